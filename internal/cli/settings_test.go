package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/stripe"
)

// settingErr is a library's error about a setting, as the contract has it.
type settingErr struct{ key, msg string }

func (e settingErr) Error() string   { return e.msg }
func (e settingErr) Setting() string { return e.key }

func TestErrorsInCLIWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{(&engine.Options{Streams: []string{"custmers"}}).Validate(), `--streams: unknown stream "custmers" (see the catalog: stripeline streams)`},
		{(&engine.Options{LookbackDays: -1}).Validate(), "--lookback-days: must be 0 or more, got -1"},
		{fmt.Errorf("sync: %w", &stripe.ConfigError{Field: "api_key", Err: errors.New("no Stripe API key is set")}), "sync: STRIPE_API_KEY: no Stripe API key is set"},
		{&stripe.ConfigError{Field: "api_key", Err: errors.New("no Stripe API key is set")}, "STRIPE_API_KEY: no Stripe API key is set"},
		{&stripe.Error{Kind: stripe.ErrAuthentication, StatusCode: 401, Key: "sk_test_123456789abcd"}, "Stripe rejected the API key sk_test_…abcd (401): check the key (STRIPE_API_KEY)"},
		{errors.New("plain: nothing to map"), "plain: nothing to map"},
		{errors.New("streams: an untyped error stays as it is"), "streams: an untyped error stays as it is"},
		{usage(fmt.Errorf("export: %w", settingErr{"dest", "dest: no directory"})), "export: --dest: no directory"},
		{settingErr{"proxy", "proxy: cannot reach the proxy"}, "proxy in the config file: cannot reach the proxy"},
		{settingErr{"frobnicate", "frobnicate: unknown to the CLI"}, "frobnicate: unknown to the CLI"},
	} {
		if got := (&App{}).inCLIWords(tc.err); got != tc.want {
			t.Errorf("inCLIWords(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
