package pipeline

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/stripeline/stripeline/internal/stripe"
)

// keyring seals API keys stored in the control store with AES-256-GCM
// under a key kept in a file of its own (mode 0600) beside the store: a copy
// of the store alone reveals no key.
type keyring struct {
	path string
	aead cipher.AEAD
}

// openKeyring reads the key file at path, creating it (0600) when absent.
func openKeyring(path string) (*keyring, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw, err = createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("key file %s does not hold a 256-bit hex key: restore it from a backup (the stored API keys cannot be read without it)", path)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return &keyring{path: path, aead: aead}, nil
}

func createKeyFile(path string) ([]byte, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	text := []byte(hex.EncodeToString(key[:]) + "\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(path) // another process made it first
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return text, f.Close()
}

// seal encrypts key for the pipeline name (bound as additional data, so a
// ciphertext moved to another pipeline does not open).
func (k *keyring) seal(name string, key stripe.Secret) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := k.aead.Seal(nonce, nonce, []byte(key.Reveal()), []byte(name))
	return base64.StdEncoding.EncodeToString(out), nil
}

// open decrypts what seal returned.
func (k *keyring) open(name, sealed string) (stripe.Secret, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	n := k.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", fmt.Errorf("the stored API key of %s is damaged: store the key again by editing the pipeline", name)
	}
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return "", fmt.Errorf("the stored API key of %s does not open with %s (another key file?): restore that file, or store the key again by editing the pipeline", name, k.path)
	}
	return stripe.Secret(plain), nil
}
