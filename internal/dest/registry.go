package dest

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Opener opens a destination from its URL. It returns a *SettingError
// (BadURL) when the URL itself cannot be used, and an error naming the
// destination (its password redacted) and the fix when the place it names
// cannot be opened.
type Opener func(ctx context.Context, u *url.URL) (Destination, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a destination available under a URL scheme. It panics if
// the scheme is registered twice; call it from an init function.
func Register(scheme string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("dest: scheme registered twice: " + scheme)
	}
	openers[scheme] = o
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens the destination named by rawURL, e.g. "sqlite://stripeline.db".
// A URL that is not one, or names no registered scheme, is a *SettingError
// for the dest setting.
func Open(ctx context.Context, rawURL string) (Destination, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, BadURL(fmt.Errorf("%q is not a destination URL: expected one of %s, e.g. sqlite://stripeline.db", Redact(rawURL), strings.Join(withSuffix(Schemes()), ", ")))
	}
	mu.RLock()
	o, ok := openers[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, BadURL(fmt.Errorf("scheme %q is not supported: expected one of %s", u.Scheme, strings.Join(withSuffix(Schemes()), ", ")))
	}
	return o(ctx, u)
}

func withSuffix(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = v + "://"
	}
	return out
}

// Redact hides the password of a DSN so it can appear in errors and logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// RedactErr renders err with the password of rawURL hidden, in case a
// driver's message repeats it.
func RedactErr(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
