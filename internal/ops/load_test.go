package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/stripe"
)

// fakeStripe is an in-memory Stripe for the load logic: customers with
// idempotency replay, search by metadata, and injectable errors. The
// emulator tests (emulator_test.go) cover the wire.
type fakeStripe struct {
	mu       sync.Mutex
	objects  map[string]map[string]string // id → form params
	order    []string
	idem     map[string]string // key → id
	requests []*stripe.Request
	postErr  error // returned by every POST
	getErr   error // returned by every GET
	nextID   int
}

func newFakeStripe() *fakeStripe {
	return &fakeStripe{objects: map[string]map[string]string{}, idem: map[string]string{}}
}

func (f *fakeStripe) Do(ctx context.Context, r *stripe.Request) (*stripe.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	switch r.Method {
	case http.MethodGet:
		if f.getErr != nil {
			return nil, f.getErr
		}
		return &stripe.Response{StatusCode: 200, Body: []byte(`{"object":"list","data":[],"has_more":false}`)}, nil
	case http.MethodDelete:
		id := strings.TrimPrefix(r.Path, "/v1/customers/")
		if _, ok := f.objects[id]; !ok {
			return nil, &stripe.Error{StatusCode: 404, Kind: stripe.ErrNotFound, Code: "resource_missing", Message: "No such customer: '" + id + "'"}
		}
		delete(f.objects, id)
		return &stripe.Response{StatusCode: 200, Body: []byte(`{"id":"` + id + `","deleted":true}`)}, nil
	}
	if f.postErr != nil {
		return nil, f.postErr
	}
	if id, ok := f.idem[r.IdempotencyKey]; ok {
		return &stripe.Response{StatusCode: 200, Body: []byte(`{"id":"` + id + `"}`), Replayed: true}, nil
	}
	if e := r.Body.Get("email"); e != "" && !strings.Contains(e, "@") {
		return nil, &stripe.Error{StatusCode: 400, Kind: stripe.ErrInvalidRequest, Param: "email", Message: "Invalid email address: " + e}
	}
	var id string
	if r.Path == "/v1/customers" {
		f.nextID++
		id = fmt.Sprintf("cus_%04d", f.nextID)
		f.objects[id] = map[string]string{}
		f.order = append(f.order, id)
	} else {
		id = strings.TrimPrefix(r.Path, "/v1/customers/")
		if _, ok := f.objects[id]; !ok {
			return nil, &stripe.Error{StatusCode: 404, Kind: stripe.ErrNotFound, Message: "No such customer"}
		}
	}
	for k, v := range r.Body {
		if v[0] == "" {
			delete(f.objects[id], k)
		} else {
			f.objects[id][k] = v[0]
		}
	}
	f.idem[r.IdempotencyKey] = id
	return &stripe.Response{StatusCode: 200, Body: []byte(`{"id":"` + id + `"}`)}, nil
}

var searchRE = regexp.MustCompile(`^metadata\['([^']+)'\]:'(.*)'$`)

func (f *fakeStripe) Search(ctx context.Context, path string, q url.Values, max int, fn func(json.RawMessage) error) error {
	m := searchRE.FindStringSubmatch(q.Get("query"))
	if m == nil {
		return fmt.Errorf("fake search: unsupported query %q", q.Get("query"))
	}
	f.mu.Lock()
	var ids []string
	for _, id := range f.order {
		if o, ok := f.objects[id]; ok && o["metadata["+m[1]+"]"] == m[2] {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	for _, id := range ids {
		if err := fn(json.RawMessage(`{"id":"` + id + `"}`)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeStripe) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.Method == method {
			n++
		}
	}
	return n
}

// fakeCatalog installs a customers stream and its create/update schemas.
func fakeCatalog(t *testing.T) {
	t.Helper()
	customers := catalog.Stream{Name: "customers", Path: "/v1/customers", Object: "customer", Searchable: true, Deletable: true}
	update := customerCreate()
	update.Required = nil
	oldL, oldA, oldO := catalogLookup, catalogAll, lookupOperation
	catalogLookup = func(name string) (catalog.Stream, bool) {
		if name == "customers" {
			return customers, true
		}
		return catalog.Stream{}, false
	}
	catalogAll = func() []catalog.Stream { return []catalog.Stream{customers} }
	lookupOperation = func(method, path string) (*catalog.Operation, bool) {
		switch path {
		case "/v1/customers":
			return &catalog.Operation{Method: method, Path: path, Body: customerCreate()}, true
		case "/v1/customers/{customer}":
			return &catalog.Operation{Method: method, Path: path, Body: update}, true
		}
		return nil, false
	}
	t.Cleanup(func() { catalogLookup, catalogAll, lookupOperation = oldL, oldA, oldO })
}

func csvRows(t *testing.T, text string) []Row {
	t.Helper()
	rows, err := ReadRows(strings.NewReader(text), FormatCSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func customersCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,name,metadata[external_id]\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "c%d@example.com,Customer %d,ext-%d\n", i, i, i)
	}
	return b.String()
}

func TestLoadCreateTwiceReplays(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	o := New(f, nil)
	rows := csvRows(t, customersCSV(40))
	res, err := o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeCreate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Created != 40 || !res.Summary.OK() {
		t.Fatalf("first run: %v", res.Summary)
	}
	res, err = o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeCreate, Concurrency: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Unchanged != 40 || res.Summary.Created != 0 {
		t.Fatalf("second run: %v", res.Summary)
	}
	if got := len(f.objects); got != 40 {
		t.Errorf("objects = %d, want 40", got)
	}
	for i, r := range res.Results {
		if r.Row != i+1 || r.ID == "" {
			t.Errorf("result %d = %+v", i, r)
		}
	}
}

func TestLoadInvalidRowsAreNotSent(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	o := New(f, nil)
	rows := csvRows(t, "email,balance,nmae\n"+
		"ok1@example.com,10,\n"+
		"bad-balance@example.com,ten,\n"+
		"typo@example.com,,Ann\n"+
		",5,\n"+
		"too,many,fields,here\n"+
		"not-an-email,1,\n")
	res, err := o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeCreate})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ status, errPart string }{
		{StatusCreated, ""},
		{StatusInvalid, `balance: expects an integer, got "ten"`},
		{StatusInvalid, "nmae: unknown parameter (did you mean name?)"},
		{StatusInvalid, "email: missing required parameter"},
		{StatusInvalid, "has 4 fields, the header has 3"},
		{StatusFailed, "email: Invalid email address: not-an-email"},
	}
	for i, w := range want {
		r := res.Results[i]
		if r.Row != i+1 || r.Status != w.status || !strings.Contains(r.Error, w.errPart) {
			t.Errorf("row %d = %+v, want status %s error containing %q", i+1, r, w.status, w.errPart)
		}
	}
	if got := f.count(http.MethodPost); got != 2 {
		t.Errorf("POSTs = %d, want 2 (the valid rows only)", got)
	}
	if res.Summary.OK() {
		t.Error("summary OK with invalid rows")
	}
}

func TestLoadPreflightStopsBeforeFirstRow(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	f.getErr = &stripe.Error{StatusCode: 401, Kind: stripe.ErrAuthentication, Key: "sk_test_bad"}
	res, err := New(f, nil).Load(context.Background(), csvRows(t, customersCSV(5)), LoadOptions{Stream: "customers", Mode: ModeCreate})
	var fe *FatalError
	if !errors.As(err, &fe) || !errors.Is(err, stripe.ErrAuthentication) {
		t.Fatalf("err = %v, want a fatal authentication error", err)
	}
	if !strings.Contains(err.Error(), "before the first row") {
		t.Errorf("err = %q", err)
	}
	if got := f.count(http.MethodPost); got != 0 {
		t.Errorf("POSTs = %d, want 0", got)
	}
	if res.Summary.Skipped != 5 {
		t.Errorf("summary = %v", res.Summary)
	}
}

func TestLoadWritePermissionStopsTheRun(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	f.postErr = &stripe.Error{StatusCode: 403, Kind: stripe.ErrPermission, Permission: "rak_customer_write", Key: "rk_test_x"}
	res, err := New(f, nil).Load(context.Background(), csvRows(t, customersCSV(200)), LoadOptions{Stream: "customers", Mode: ModeCreate, Concurrency: 3})
	if !errors.Is(err, stripe.ErrPermission) {
		t.Fatalf("err = %v, want a permission error", err)
	}
	// At most one round of in-flight rows reached Stripe.
	if got := f.count(http.MethodPost); got > 3+1 {
		t.Errorf("POSTs = %d after a fatal 403, want at most 4", got)
	}
	if res.Summary.Failed+res.Summary.Skipped != 200 || res.Summary.Skipped < 190 {
		t.Errorf("summary = %v", res.Summary)
	}
}

func TestLoadDryRunSendsNothing(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	var plans []Plan
	rows := csvRows(t, customersCSV(3)+"x@y.z,Bad,\"\"\n")
	res, err := New(f, nil).Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeUpsert, Key: "metadata[external_id]", DryRun: true,
		Plan: func(p Plan) { plans = append(plans, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests); n != 0 {
		t.Fatalf("dry run sent %d requests", n)
	}
	if len(plans) != 3 || plans[0].Method != "POST" || plans[0].Path != "/v1/customers" || !strings.Contains(plans[0].Note, "metadata[external_id]=ext-1") {
		t.Fatalf("plans = %+v", plans)
	}
	if !strings.HasPrefix(plans[0].IdempotencyKey, "stripeline-load-") || len(plans[0].IdempotencyKey) > 255 {
		t.Errorf("idempotency key %q", plans[0].IdempotencyKey)
	}
	if res.Summary.Planned != 3 || res.Summary.Invalid != 1 {
		t.Errorf("summary = %v", res.Summary)
	}
}

func TestLoadUpsertByKey(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	o := New(f, nil)
	opt := LoadOptions{Stream: "customers", Mode: ModeUpsert, Key: "metadata[external_id]"}
	if _, err := o.Load(context.Background(), csvRows(t, customersCSV(3)), opt); err != nil {
		t.Fatal(err)
	}
	res, err := o.Load(context.Background(), csvRows(t, "email,name,metadata[external_id],metadata[tier]\n"+
		"c2@example.com,Renamed,ext-2,gold\nc9@example.com,New,ext-9,\n"), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Updated != 1 || res.Summary.Created != 1 || len(f.objects) != 4 {
		t.Fatalf("summary = %v, objects = %d", res.Summary, len(f.objects))
	}
	if got := f.objects[res.Results[0].ID]; got["name"] != "Renamed" || got["metadata[tier]"] != "gold" {
		t.Errorf("updated object = %v", got)
	}
}

func TestLoadDeleteAndUnsetMetadata(t *testing.T) {
	fakeCatalog(t)
	f := newFakeStripe()
	o := New(f, nil)
	if _, err := o.Load(context.Background(), csvRows(t, customersCSV(2)), LoadOptions{Stream: "customers", Mode: ModeCreate}); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows(strings.NewReader(`{"id":"cus_0001","metadata":{"external_id":null}}`+"\n"), FormatJSONL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeUpdate})
	if err != nil || res.Summary.Updated != 1 {
		t.Fatalf("update: %v %v", res.Summary, err)
	}
	if _, ok := f.objects["cus_0001"]["metadata[external_id]"]; ok {
		t.Errorf("metadata key not unset: %v", f.objects["cus_0001"])
	}
	del := csvRows(t, "id\ncus_0001\ncus_0001\n")
	res, err = o.Load(context.Background(), del, LoadOptions{Stream: "customers", Mode: ModeDelete, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Deleted != 1 || res.Summary.Unchanged != 1 {
		t.Errorf("delete summary = %v", res.Summary)
	}
}

func TestIdempotencyKeyStable(t *testing.T) {
	a := IdempotencyKey("customers", "create", "POST", "/v1/customers", Params{{"email", "a"}, {"name", "b"}})
	b := IdempotencyKey("customers", "create", "POST", "/v1/customers", Params{{"name", "b"}, {"email", "a"}})
	c := IdempotencyKey("customers", "upsert", "POST", "/v1/customers", Params{{"name", "b"}, {"email", "a"}})
	if a != b || a == c {
		t.Errorf("keys: %s %s %s", a, b, c)
	}
}

func TestReplicaQuery(t *testing.T) {
	tests := []struct {
		dialect string
		key     []string
		value   string
		want    string
	}{
		{"sqlite", []string{"metadata", "external_id"}, "o'k", `SELECT "id" FROM "customers" WHERE json_extract("metadata", '$."external_id"') = ? AND ("_stripeline_deleted" IS NULL OR "_stripeline_deleted" = FALSE) LIMIT 2`},
		{"postgres", []string{"email"}, "a@b.c", `SELECT "id" FROM "customers" WHERE "email" = ? AND ("_stripeline_deleted" IS NULL OR "_stripeline_deleted" = FALSE) LIMIT 2`},
		{"mysql", []string{"metadata", "k"}, `a\'`, "SELECT `id` FROM `customers` WHERE JSON_UNQUOTE(JSON_EXTRACT(`metadata`, '$.\"k\"')) = ? AND (`_stripeline_deleted` IS NULL OR `_stripeline_deleted` = FALSE) LIMIT 2"},
	}
	for _, tt := range tests {
		got, args, err := ReplicaQuery(tt.dialect, "customers", tt.key, tt.value)
		if err != nil || got != tt.want || len(args) != 1 || args[0] != tt.value {
			t.Errorf("ReplicaQuery(%s) =\n%s %v, %v\nwant\n%s [%s]", tt.dialect, got, args, err, tt.want, tt.value)
		}
	}
	if _, _, err := ReplicaQuery("sqlite", "customers", []string{"metadata", "a'b"}, "x"); err == nil {
		t.Error("unsafe key accepted")
	}
}

func TestSearchQuery(t *testing.T) {
	got, err := SearchQuery([]string{"metadata", "external_id"}, `it's`)
	if err != nil || got != `metadata['external_id']:'it\'s'` {
		t.Errorf("SearchQuery = %q, %v", got, err)
	}
	if _, err := SearchQuery([]string{"address", "city"}, "x"); err == nil {
		t.Error("nested non-metadata key accepted")
	}
}
