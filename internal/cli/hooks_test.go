package cli

import "testing"

// SetTestClientOption makes every Stripe client the commands build apply o
// last, until the test ends (e.g. a millisecond backoff).
func SetTestClientOption(t testing.TB, o ClientOption) {
	testClientOption = o
	t.Cleanup(func() { testClientOption = nil })
}
