package catalog_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/catalog"
)

// TestGeneratedUpToDate regenerates the catalog into a temporary directory
// and compares it with the committed files.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator over the 22 MB spec")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./gen", "-out", dir, "-docs", filepath.Join(dir, "STREAMS.md"))
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./gen: %v", err)
	}
	for _, f := range []struct{ got, want string }{
		{filepath.Join(dir, "zz_generated.go"), "zz_generated.go"},
		{filepath.Join(dir, "STREAMS.md"), filepath.Join("..", "..", "docs", "STREAMS.md")},
		{filepath.Join(dir, "schemas.json.gz"), "schemas.json.gz"},
	} {
		got, want := readMaybeGzip(t, f.got), readMaybeGzip(t, f.want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./internal/catalog`", f.want)
		}
	}
}

// readMaybeGzip reads a file, decompressed when it is gzip, so that a
// different compressor version does not count as stale.
func readMaybeGzip(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

func mustLookup(t *testing.T, name string) catalog.Stream {
	t.Helper()
	s, ok := catalog.Lookup(name)
	if !ok {
		t.Fatalf("stream %s is missing", name)
	}
	return s
}

func TestStreamCount(t *testing.T) {
	if n := len(catalog.All()); n <= 100 {
		t.Errorf("catalog has %d streams, want > 100", n)
	}
	if catalog.SpecVersion() == "" {
		t.Error("SpecVersion is empty")
	}
}

func TestParentsComeFirst(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range catalog.All() {
		if s.Parent != "" {
			if _, ok := catalog.Lookup(s.Parent); !ok {
				t.Errorf("%s: parent %s is not a stream", s.Name, s.Parent)
			} else if !seen[s.Parent] {
				t.Errorf("%s is listed before its parent %s", s.Name, s.Parent)
			}
			if s.ParentParam == "" {
				t.Errorf("%s: parent without ParentParam", s.Name)
			}
			if !s.ParentInQuery && !strings.Contains(s.Path, "{"+s.ParentParam+"}") {
				t.Errorf("%s: path %s lacks {%s}", s.Name, s.Path, s.ParentParam)
			}
		} else if strings.Contains(s.Path, "{") {
			t.Errorf("%s: path %s needs an id but the stream has no parent", s.Name, s.Path)
		}
		if seen[s.Name] {
			t.Errorf("duplicate stream %s", s.Name)
		}
		seen[s.Name] = true
	}
}

func TestAliasesAndDeprecatedLeftOut(t *testing.T) {
	for _, name := range []string{"balance_history", "accounts_people", "linked_accounts", "exchange_rates", "customers_cards", "customers_bank_accounts"} {
		if _, ok := catalog.Lookup(name); ok {
			t.Errorf("stream %s should not exist", name)
		}
	}
	for _, s := range catalog.All() {
		if strings.HasSuffix(s.Name, "_people") || strings.HasPrefix(s.Path, "/v1/linked_accounts") {
			t.Errorf("alias stream %s (%s)", s.Name, s.Path)
		}
	}
}

func TestKeyStreams(t *testing.T) {
	lines := mustLookup(t, "invoices_lines")
	if lines.Parent != "invoices" || lines.ParentParam != "invoice" || lines.EmbeddedField != "lines" || lines.ParentInQuery {
		t.Errorf("invoices_lines: parent %q param %q embedded %q in query %v", lines.Parent, lines.ParentParam, lines.EmbeddedField, lines.ParentInQuery)
	}
	if !slices.Contains(lines.ObjectTypes, "line_item") {
		t.Errorf("invoices_lines object types %v", lines.ObjectTypes)
	}

	items := mustLookup(t, "subscriptions_items")
	if items.Parent != "subscriptions" || items.ParentParam != "subscription" || !items.ParentInQuery || items.EmbeddedField != "items" {
		t.Errorf("subscriptions_items: %+v", items)
	}
	if got := mustLookup(t, "setup_intents_attempts"); got.Parent != "setup_intents" || got.ParentParam != "setup_intent" || !got.ParentInQuery {
		t.Errorf("setup_intents_attempts: parent %q param %q", got.Parent, got.ParentParam)
	}
	if got := mustLookup(t, "checkout_sessions_line_items"); got.Parent != "checkout_sessions" || got.EmbeddedField != "line_items" {
		t.Errorf("checkout_sessions_line_items: parent %q embedded %q", got.Parent, got.EmbeddedField)
	}
	if got := mustLookup(t, "treasury_financial_accounts_transactions"); got.Parent != "treasury_financial_accounts" || got.ParentParam != "financial_account" {
		t.Errorf("treasury transactions: parent %q param %q", got.Parent, got.ParentParam)
	}

	subs := mustLookup(t, "subscriptions")
	if diff := cmp.Diff(map[string]string{"status": "all"}, subs.ListParams); diff != "" {
		t.Errorf("subscriptions ListParams (-want +got):\n%s", diff)
	}
	if subs.DeleteEvent != "" {
		t.Errorf("subscriptions DeleteEvent = %q; customer.subscription.deleted means canceled", subs.DeleteEvent)
	}
	if !subs.TestClock || !subs.Searchable {
		t.Errorf("subscriptions: TestClock %v Searchable %v", subs.TestClock, subs.Searchable)
	}

	cus := mustLookup(t, "customers")
	if !cus.Searchable || !cus.Deletable || cus.DeleteEvent != "customer.deleted" || cus.Incremental != catalog.IncrementalEvents {
		t.Errorf("customers: searchable %v deletable %v delete event %q incremental %q", cus.Searchable, cus.Deletable, cus.DeleteEvent, cus.Incremental)
	}
	if cus.Cursor != "created" || !cus.Created || !cus.HasCreatedField {
		t.Errorf("customers: cursor %q created %v has created %v", cus.Cursor, cus.Created, cus.HasCreatedField)
	}
	if !slices.Contains(cus.EventTypes, "customer.created") || !slices.IsSorted(cus.EventTypes) {
		t.Errorf("customers events %v", cus.EventTypes)
	}
	if cus.Path != "/v1/customers" || cus.Object != "customer" {
		t.Errorf("customers: path %q object %q", cus.Path, cus.Object)
	}

	bt := mustLookup(t, "balance_transactions")
	if bt.Incremental != catalog.IncrementalCreated || len(bt.EventTypes) != 0 {
		t.Errorf("balance_transactions: incremental %q events %v", bt.Incremental, bt.EventTypes)
	}

	secrets := mustLookup(t, "apps_secrets")
	if len(secrets.RequiredParams) != 0 || secrets.ListParams["scope[type]"] != "account" {
		t.Errorf("apps_secrets: required %v list params %v", secrets.RequiredParams, secrets.ListParams)
	}
	if got := mustLookup(t, "billing_meters_event_summaries"); !slices.Contains(got.RequiredParams, "start_time") {
		t.Errorf("billing_meters_event_summaries RequiredParams %v", got.RequiredParams)
	}

	ext := mustLookup(t, "accounts_external_accounts")
	if ext.DeleteEvent != "account.external_account.deleted" || !ext.Deletable {
		t.Errorf("accounts_external_accounts: delete event %q deletable %v", ext.DeleteEvent, ext.Deletable)
	}
	if slices.Contains(ext.EventTypes, "customer.source.created") {
		t.Errorf("accounts_external_accounts has customer source events: %v", ext.EventTypes)
	}
}

func TestSearchable(t *testing.T) {
	var got []string
	for _, s := range catalog.All() {
		if s.Searchable {
			got = append(got, s.Name)
		}
	}
	want := []string{"charges", "customers", "invoices", "payment_intents", "prices", "products", "subscriptions"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("searchable streams (-want +got):\n%s", diff)
	}
}

func TestIncrementalRules(t *testing.T) {
	for _, s := range catalog.All() {
		var want string
		switch {
		case len(s.EventTypes) > 0 && s.Parent == "":
			want = catalog.IncrementalEvents
		case s.Created:
			want = catalog.IncrementalCreated
		default:
			want = catalog.IncrementalFull
		}
		if s.Incremental != want {
			t.Errorf("%s: incremental %q, want %q", s.Name, s.Incremental, want)
		}
		if (s.Cursor == "created") != s.HasCreatedField {
			t.Errorf("%s: cursor %q but has created field %v", s.Name, s.Cursor, s.HasCreatedField)
		}
		if s.DeleteEvent != "" && !slices.Contains(s.EventTypes, s.DeleteEvent) {
			t.Errorf("%s: delete event %s not among its events", s.Name, s.DeleteEvent)
		}
	}
}

func TestColumns(t *testing.T) {
	for _, s := range catalog.All() {
		if len(s.Columns) == 0 {
			t.Errorf("%s has no columns", s.Name)
			continue
		}
		rest := s.Columns
		if s.Columns[0].Name == "id" {
			rest = s.Columns[1:]
		}
		if !slices.IsSortedFunc(rest, func(a, b catalog.Column) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: columns not sorted", s.Name)
		}
	}
	cus := mustLookup(t, "customers")
	cols := map[string]catalog.Column{}
	for _, c := range cus.Columns {
		cols[c.Name] = c
	}
	want := map[string]catalog.Column{
		"id":             {Name: "id", Type: catalog.TypeString},
		"created":        {Name: "created", Type: catalog.TypeInteger},
		"livemode":       {Name: "livemode", Type: catalog.TypeBoolean},
		"metadata":       {Name: "metadata", Type: catalog.TypeJSON},
		"email":          {Name: "email", Type: catalog.TypeString, Nullable: true},
		"default_source": {Name: "default_source", Type: catalog.TypeString, Nullable: true, Expandable: true},
		"address":        {Name: "address", Type: catalog.TypeJSON, Nullable: true},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, cols[name]); diff != "" {
			t.Errorf("customers.%s (-want +got):\n%s", name, diff)
		}
	}
	if cus.Columns[0].Name != "id" {
		t.Errorf("first column %q, want id", cus.Columns[0].Name)
	}
}

func TestObjectTypes(t *testing.T) {
	byName := func(ss []catalog.Stream) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	if got := byName(catalog.StreamsForObjectType("invoice")); !slices.Equal(got, []string{"invoices"}) {
		t.Errorf("invoice → %v", got)
	}
	if got := byName(catalog.StreamsForObjectType("line_item")); !slices.Contains(got, "invoices_lines") {
		t.Errorf("line_item → %v", got)
	}
	if got := byName(catalog.StreamsForObjectType("card")); !slices.Contains(got, "customers_sources") || !slices.Contains(got, "accounts_external_accounts") {
		t.Errorf("card → %v", got)
	}
	if got := catalog.StreamsForObjectType("no_such_object"); len(got) != 0 {
		t.Errorf("unknown type → %v", got)
	}
	types := catalog.ObjectTypes()
	if !slices.IsSorted(types) || !slices.Contains(types, "customer") || !slices.Contains(types, "subscription_item") {
		t.Errorf("ObjectTypes() = %v", types)
	}
}

func TestSchemas(t *testing.T) {
	c := catalog.Component("customer")
	if c == nil || c.Properties["email"] == nil || c.Properties["id"].Type != "string" {
		t.Fatalf("Component(customer) = %+v", c)
	}
	if catalog.Component("no_such_schema") != nil {
		t.Error("unknown component is not nil")
	}
	if got := catalog.Resolve(&catalog.Schema{Ref: "customer"}); got != c {
		t.Error("Resolve(ref customer) is not Component(customer)")
	}
	plain := &catalog.Schema{Type: "string"}
	if catalog.Resolve(plain) != plain {
		t.Error("Resolve changed a schema without Ref")
	}

	op, ok := catalog.LookupOperation("POST", "/v1/customers")
	if !ok || op.Body == nil {
		t.Fatalf("POST /v1/customers: %+v %v", op, ok)
	}
	for _, p := range []string{"email", "metadata"} {
		if op.Body.Properties[p] == nil {
			t.Errorf("POST /v1/customers body lacks %s", p)
		}
	}
	if r := catalog.Resolve(op.Response); r == nil || r.Properties["object"] == nil {
		t.Errorf("POST /v1/customers response %+v", op.Response)
	}

	get, ok := catalog.LookupOperation("GET", "/v1/customers/{customer}")
	if !ok || !slices.Equal(get.PathParams, []string{"customer"}) || get.Query["expand"] == nil {
		t.Errorf("GET /v1/customers/{customer}: %+v", get)
	}
	list, ok := catalog.LookupOperation("GET", "/v1/subscriptions")
	if !ok || !slices.Contains(list.Query["status"].Enum, "all") {
		t.Errorf("GET /v1/subscriptions status param: %+v", list)
	}
	if _, ok := catalog.LookupOperation("DELETE", "/v1/customers/{customer}"); !ok {
		t.Error("DELETE /v1/customers/{customer} missing")
	}
	if _, ok := catalog.LookupOperation("PUT", "/v1/customers"); ok {
		t.Error("PUT /v1/customers found")
	}
	if n := len(catalog.Operations()); n < 500 {
		t.Errorf("%d operations, want ≥ 500", n)
	}

	if s := catalog.ObjectSchema("invoices"); s != catalog.Component("invoice") {
		t.Error("ObjectSchema(invoices) is not Component(invoice)")
	}
	ext := catalog.ObjectSchema("accounts_external_accounts")
	var refs []string
	for _, a := range ext.AnyOf {
		refs = append(refs, a.Ref)
	}
	if !slices.Equal(refs, []string{"bank_account", "card"}) {
		t.Errorf("ObjectSchema(accounts_external_accounts) refs %v", refs)
	}
	if catalog.ObjectSchema("nope") != nil {
		t.Error("ObjectSchema(unknown) is not nil")
	}
}

// TestEveryStreamHasSchemaAndOperation ties the two halves together: each
// stream's object schema and list operation are in the embedded schemas.
func TestEveryStreamHasSchemaAndOperation(t *testing.T) {
	for _, s := range catalog.All() {
		if catalog.ObjectSchema(s.Name) == nil {
			t.Errorf("%s: no object schema", s.Name)
		}
		op, ok := catalog.LookupOperation("GET", s.Path)
		if !ok {
			t.Errorf("%s: no GET %s", s.Name, s.Path)
			continue
		}
		if s.Created != (op.Query["created"] != nil) {
			t.Errorf("%s: Created %v disagrees with the operation", s.Name, s.Created)
		}
		if s.ParentInQuery && op.Query[s.ParentParam] == nil {
			t.Errorf("%s: no query parameter %s", s.Name, s.ParentParam)
		}
	}
}

func TestDuplicatesListTheSameObjects(t *testing.T) {
	for _, s := range catalog.All() {
		top := catalog.DuplicateOf(s.Name)
		if top == "" {
			continue
		}
		other, ok := catalog.Lookup(top)
		if !ok || other.Parent != "" {
			t.Fatalf("%s: duplicate %q is not a top-level stream", s.Name, top)
		}
		if fmt.Sprint(s.ObjectTypes) != fmt.Sprint(other.ObjectTypes) {
			t.Errorf("%s lists %v, %s lists %v", s.Name, s.ObjectTypes, top, other.ObjectTypes)
		}
	}
	for _, s := range catalog.Defaults() {
		if s.Name == "customers_subscriptions" || s.Name == "charges_refunds" {
			t.Errorf("default selection reads %s", s.Name)
		}
	}
	if n, all := len(catalog.Defaults()), len(catalog.All()); n != all-2 {
		t.Errorf("defaults: %d of %d streams", n, all)
	}
}
