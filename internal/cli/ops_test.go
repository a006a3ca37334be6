package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/emulator"
)

const (
	opsKey           = "sk_test_51OpsOpsOpsOpsOpsOpsOpsOpsOpsOpsOps0123456789abcd"
	opsReadOnlyKey   = "rk_test_51OpsReadOnlyReadOnlyReadOnlyReadOnly0123456789ab"
	opsNoCustomerKey = "rk_test_51OpsNoCustomersNoCustomersNoCustomers0123456789"
)

// opsEmulator starts an emulator and returns its base URL.
func opsEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 7, Objects: 200, ConnectedAccounts: -1,
		Restricted: map[string][]string{opsReadOnlyKey: {"rak_customer_read"}, opsNoCustomerKey: {"rak_charge_read"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

func TestCLIWriteGetSearchDelete(t *testing.T) {
	t.Parallel()
	_, base := opsEmulator(t)
	code, out, errOut := runCLI(t, base, opsKey, "create", "customers", "email=ann@example.com", "name=Ann", "metadata[plan]=pro", "address[city]=Paris", "--format", "json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var cus struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &cus); err != nil || !strings.HasPrefix(cus.ID, "cus_") || cus.Metadata["plan"] != "pro" {
		t.Fatalf("create output %q: %v", out, err)
	}

	code, out, errOut = runCLI(t, base, opsKey, "get", cus.ID)
	if code != 0 || !strings.Contains(out, "ann@example.com") || !strings.Contains(out, `{"city":"Paris"`) {
		t.Fatalf("get: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, base, opsKey, "update", "customers", cus.ID, "metadata[plan]=", "--json", `{"metadata":{"tier":"gold"}}`, "--format", "json")
	if code != 0 {
		t.Fatalf("update: exit %d: %s", code, errOut)
	}
	cus.Metadata = nil
	if err := json.Unmarshal([]byte(out), &cus); err != nil || cus.Metadata["tier"] != "gold" || cus.Metadata["plan"] != "" {
		t.Fatalf("update output %q: %v", out, err)
	}

	code, out, errOut = runCLI(t, base, opsKey, "search", "customers", "email:'ann@example.com'")
	if code != 0 || !strings.Contains(errOut, "lag") {
		t.Fatalf("search: exit %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = runCLI(t, base, opsKey, "delete", "customers", cus.ID)
	if code != 2 || !strings.Contains(errOut, "stdin is not a terminal") || !strings.Contains(errOut, "--yes") {
		t.Fatalf("delete without --yes: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, base, opsKey, "delete", "customers", cus.ID, "--yes")
	if code != 0 {
		t.Fatalf("delete --yes: exit %d: %s", code, errOut)
	}
	// Stripe still retrieves a deleted customer, marked deleted.
	code, out, errOut = runCLI(t, base, opsKey, "get", cus.ID, "--format", "json")
	var gone struct {
		Deleted bool `json:"deleted"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &gone) != nil || !gone.Deleted {
		t.Fatalf("get after delete: exit %d: %s%s", code, out, errOut)
	}
}

func TestCLIOpsUsageErrors(t *testing.T) {
	t.Parallel()
	_, base := opsEmulator(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "SUMMER25"}, "get coupons SUMMER25"},
		{[]string{"search", "coupons", "name:'x'"}, "searchable streams are charges, customers, invoices, payment_intents, prices, products, subscriptions"},
		{[]string{"create", "customers", "emial=a@b.c"}, "emial: unknown parameter (did you mean email?)"},
		{[]string{"create", "customers", "balance=ten"}, `balance: expects an integer, got "ten"`},
		{[]string{"update", "customers", "cus_1", "plan"}, "expected key=value"},
		{[]string{"load", "customers", "x.csv"}, "--mode is required"},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, base, opsKey, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestCLILoad(t *testing.T) {
	t.Parallel()
	emu, base := opsEmulator(t)
	before := len(emu.Objects(emu.MainAccountID(), "customers"))
	dir := t.TempDir()
	file := filepath.Join(dir, "in.csv")
	var b strings.Builder
	b.WriteString("mail,name,metadata[external_id]\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "u%d@example.com,User %d,x-%d\n", i, i, i)
	}
	b.WriteString("bad@example.com,Bad,\"" + strings.Repeat("k", 501) + "\"\n")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "out.csv")

	code, out, errOut := runCLI(t, base, opsKey, "load", "customers", file, "--mode", "create", "--map", "mail=email", "--dry-run")
	if code != 1 || !strings.Contains(out, "row 1: POST /v1/customers email=u1@example.com") || !strings.Contains(errOut, "row 31: invalid: metadata[external_id]: value is 501 characters") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := len(emu.Objects(emu.MainAccountID(), "customers")); got != before {
		t.Fatalf("dry run created %d customers", got-before)
	}

	code, out, errOut = runCLI(t, base, opsKey, "load", "customers", file, "--mode", "create", "--map", "mail=email", "--report", report)
	if code != 1 || !strings.Contains(out, "created 30") || !strings.Contains(out, "invalid 1") {
		t.Fatalf("load: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "header excluded") {
		t.Errorf("load stderr does not say how rows are numbered: %s", errOut)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rep)), "\n")
	if len(lines) != 32 || lines[0] != "row,id,status,error" || !strings.HasPrefix(lines[1], "1,cus_") || !strings.HasPrefix(lines[31], "31,,invalid,") {
		t.Fatalf("report:\n%s", rep)
	}
	if got := len(emu.Objects(emu.MainAccountID(), "customers")) - before; got != 30 {
		t.Fatalf("customers created = %d, want 30", got)
	}

	code, out, errOut = runCLI(t, base, opsKey, "load", "customers", file, "--mode", "create", "--map", "mail=email", "--format", "json")
	var sum struct {
		Created, Unchanged, Invalid int
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 1 || sum.Created != 0 || sum.Unchanged != 30 || sum.Invalid != 1 {
		t.Fatalf("re-run: exit %d %+v %v\n%s\n%s", code, sum, err, out, errOut)
	}

	// A key that may not read customers stops the load before the first row;
	// one that may read but not write stops it at the first write.
	code, _, errOut = runCLI(t, base, opsNoCustomerKey, "load", "customers", file, "--mode", "upsert", "--key", "metadata[external_id]", "--map", "mail=email")
	if code != 1 || !strings.Contains(errOut, "before the first row") || !strings.Contains(errOut, "rak_customer_read") {
		t.Fatalf("key without read: exit %d: %s", code, errOut)
	}
	fresh := filepath.Join(dir, "fresh.csv")
	if err := os.WriteFile(fresh, []byte("email,metadata[external_id]\nnew1@example.com,n-1\nnew2@example.com,n-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, base, opsReadOnlyKey, "load", "customers", fresh, "--mode", "create")
	if code != 1 || !strings.Contains(errOut, "stopped at row") || !strings.Contains(errOut, "403") {
		t.Fatalf("read-only key: exit %d: %s", code, errOut)
	}
	if got := len(emu.Objects(emu.MainAccountID(), "customers")) - before; got != 30 {
		t.Fatalf("customers after the refused loads = %d, want 30", got)
	}
}

func TestCLICreateGetSearch(t *testing.T) {
	t.Parallel()
	_, base := opsEmulator(t)
	code, out, errOut := runCLI(t, base, opsKey, "create", "customers", "email=zoe@example.com", "name=Zoe", "metadata[plan]=pro", "--format", "json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var cus struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &cus); err != nil || cus.ID == "" {
		t.Fatalf("create output %q: %v", out, err)
	}
	code, out, errOut = runCLI(t, base, opsKey, "get", cus.ID, "--expand", "tax_ids")
	if code != 0 || !strings.Contains(out, "zoe@example.com") || !strings.Contains(out, `{"plan":"pro"}`) {
		t.Fatalf("get: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, base, opsKey, "get", "customers", cus.ID, "--format", "json")
	if code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("get --format json: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, base, opsKey, "search", "customers", "email:'zoe@example.com'", "--limit", "5")
	if code != 0 || !strings.Contains(errOut, "lag") {
		t.Fatalf("search: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "EMAIL") || !strings.Contains(out, cus.ID) {
		t.Errorf("search table does not list %s:\n%s", cus.ID, out)
	}
	code, out, _ = runCLI(t, base, opsKey, "search", "customers", "metadata['plan']:'pro'", "--format", "json")
	var found []map[string]any
	if err := json.Unmarshal([]byte(out), &found); code != 0 || err != nil || len(found) == 0 {
		t.Errorf("search --format json: exit %d, %v: %s", code, err, out)
	}
}
