package stripe

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Secret is a Stripe API key. Every way of printing it — fmt verbs, slog,
// JSON, text marshalling — shows only the prefix and the last four
// characters ("sk_test_…abcd"); Reveal returns the key itself and is called
// only where the key goes on the wire.
type Secret string

var keyPrefixes = []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"}

// Valid reports whether s looks like a Stripe secret or restricted key.
func (s Secret) Valid() bool {
	for _, p := range keyPrefixes {
		if strings.HasPrefix(string(s), p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// Reveal returns the key in full. Use it only to authenticate a request.
func (s Secret) Reveal() string { return string(s) }

// Mode returns "live" for live-mode keys and "test" otherwise.
func (s Secret) Mode() string {
	if strings.HasPrefix(string(s), "sk_live_") || strings.HasPrefix(string(s), "rk_live_") {
		return "live"
	}
	return "test"
}

// Kind returns "restricted" for rk_ keys and "secret" otherwise.
func (s Secret) Kind() string {
	if strings.HasPrefix(string(s), "rk_") {
		return "restricted"
	}
	return "secret"
}

// String returns the redacted key: its prefix and last four characters.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	prefix := ""
	for _, p := range keyPrefixes {
		if strings.HasPrefix(string(s), p) {
			prefix = p
			break
		}
	}
	rest := string(s)[len(prefix):]
	// A short key would be mostly revealed by its last four characters.
	if len(rest) < 12 {
		return prefix + "…"
	}
	return prefix + "…" + rest[len(rest)-4:]
}

// GoString returns the redacted key for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format prints the redacted key for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q' || (verb == 'v' && f.Flag('#')):
		fmt.Fprint(f, strconv.Quote(s.String()))
	default:
		fmt.Fprint(f, s.String())
	}
}

// LogValue makes slog print the redacted key.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the redacted key.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText encodes the redacted key (YAML, text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// redact replaces any occurrence of the key in msg by its redacted form.
func (s Secret) redact(msg string) string {
	if len(s) < 8 {
		return msg
	}
	return strings.ReplaceAll(msg, string(s), s.String())
}
