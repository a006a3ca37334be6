package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/emulator"
)

// checkResult is the JSON of `stripeline check --format json`.
type checkResult struct {
	Account struct {
		ID          string
		DisplayName string `json:"display_name"`
	}
	Mode      string
	KeyType   string `json:"key_type"`
	Key       string
	APIBase   string `json:"api_base"`
	Readable  int
	Forbidden int
	Errors    int
	Streams   []struct{ Name, Path, Access, Permission, Error string }
}

func decodeCheck(t *testing.T, out string) checkResult {
	t.Helper()
	var r checkResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return r
}

const restrictedKey = "rk_test_checkcustomersandcharges"

func checkEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	emu, srv := newEmulator(t, emulator.Config{Seed: 31, Objects: 600, Restricted: map[string][]string{
		restrictedKey: {"rak_account_read", "rak_customer_read", "rak_charge_write"},
	}})
	return emu, srv.URL
}

// TestCheckAgainstEmulator: a secret test key reads every top-level stream
// of the emulated account.
func TestCheckAgainstEmulator(t *testing.T) {
	t.Parallel()
	emu, base := checkEmulator(t)
	const key = "sk_test_checkemulator0000000001"
	code, out, errOut := runCLI(t, base, key, "check", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := decodeCheck(t, out)
	if r.Account.ID != emu.MainAccountID() || r.Mode != "test" || r.KeyType != "secret" || r.Key != "sk_test_…0001" || r.APIBase != base {
		t.Errorf("report: account %q mode %q key type %q key %q base %q", r.Account.ID, r.Mode, r.KeyType, r.Key, r.APIBase)
	}
	top := topLevelStreams()
	if len(r.Streams) != len(top) || r.Readable != len(top) || r.Forbidden != 0 || r.Errors != 0 {
		t.Errorf("%d streams probed, %d readable, %d forbidden, %d errors; want all %d readable", len(r.Streams), r.Readable, r.Forbidden, r.Errors, len(top))
		for _, s := range r.Streams {
			if s.Access != "readable" {
				t.Logf("%s: %s %s %s", s.Name, s.Access, s.Permission, s.Error)
			}
		}
	}

	code, out, errOut = runCLI(t, base, key, "check")
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	for _, want := range []string{emu.MainAccountID(), "secret key sk_test_…0001", "streams readable, 0 forbidden, 0 errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, key) {
		t.Error("output contains the full key")
	}
}

// TestCheckRestrictedKeyAgainstEmulator: a restricted key that may read
// the account, customers and charges (the latter through write) still passes (exit 0) and reports every other
// emulated stream forbidden, naming the permission it lacks.
func TestCheckRestrictedKeyAgainstEmulator(t *testing.T) {
	t.Parallel()
	_, base := checkEmulator(t)
	code, out, errOut := runCLI(t, base, restrictedKey, "check", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	r := decodeCheck(t, out)
	if r.KeyType != "restricted" || r.Forbidden == 0 || r.Errors != 0 {
		t.Fatalf("key type %q, %d readable, %d forbidden, %d errors", r.KeyType, r.Readable, r.Forbidden, r.Errors)
	}
	access := map[string]string{}
	for _, s := range r.Streams {
		access[s.Name] = s.Access
		if s.Access == "forbidden" && !strings.HasPrefix(s.Permission, "rak_") {
			t.Errorf("%s forbidden without a permission: %+v", s.Name, s)
		}
		if s.Name == "invoices" && (s.Access != "forbidden" || s.Permission != "rak_invoice_read") {
			t.Errorf("invoices: %+v, want forbidden lacking rak_invoice_read", s)
		}
	}
	for _, name := range []string{"customers", "charges"} {
		if access[name] != "readable" {
			t.Errorf("%s: %s, want readable", name, access[name])
		}
	}

	code, out, errOut = runCLI(t, base, restrictedKey, "check")
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"restricted key rk_test_…rges", "rak_invoice_read", "grant the permissions listed above"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, restrictedKey) {
		t.Error("output contains the full key")
	}
}

// TestCheckBadKeyAgainstEmulator: a key the emulator rejects exits 1 with
// one sentence and no trace of the key.
func TestCheckBadKeyAgainstEmulator(t *testing.T) {
	t.Parallel()
	_, base := checkEmulator(t)
	const bad = "sk_test_not-a-valid-key-5678abcd"
	code, out, errOut := runCLI(t, base, bad, "check")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	oneSentence(t, errOut, "stripeline: Stripe rejected the API key sk_test_…abcd (401): check the key (STRIPE_API_KEY)")
	if strings.Contains(out+errOut, bad) || strings.Contains(out+errOut, "not-a-valid-key") {
		t.Errorf("output contains the key: %s%s", out, errOut)
	}
}
