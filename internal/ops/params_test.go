package ops

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		key     string
		want    []string
		wantErr bool
	}{
		{"email", []string{"email"}, false},
		{"metadata[plan]", []string{"metadata", "plan"}, false},
		{"items[0][price]", []string{"items", "0", "price"}, false},
		{"expand[]", []string{"expand", ""}, false},
		{"", nil, true},
		{"[a]", nil, true},
		{"a[b", nil, true},
		{"a]b", nil, true},
		{"a[b]c", nil, true},
		{"a[][b]", nil, true},
		{"a[b[c]]", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.key)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseKey(%q) error = %v, wantErr %v", tt.key, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("ParseKey(%q) (-got +want):\n%s", tt.key, diff)
		}
		if err == nil && FormatKey(got) != tt.key {
			t.Errorf("FormatKey(ParseKey(%q)) = %q", tt.key, FormatKey(got))
		}
	}
}

func TestFlattenJSON(t *testing.T) {
	got, err := FlattenJSON([]byte(`{"email":"a@b.c","balance":-120,"big":12345678901234567890,"tax_exempt":null,
		"metadata":{"plan":"pro","n":"1"},"items":[{"price":"price_1","quantity":2},{"price":"price_2"}],
		"preferred_locales":[],"address":{},"livemode":false}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		{"email", "a@b.c"}, {"balance", "-120"}, {"big", "12345678901234567890"}, {"tax_exempt", ""},
		{"metadata[plan]", "pro"}, {"metadata[n]", "1"},
		{"items[0][price]", "price_1"}, {"items[0][quantity]", "2"}, {"items[1][price]", "price_2"},
		{"preferred_locales", ""}, {"address", ""}, {"livemode", "false"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("FlattenJSON (-got +want):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `{"a":1} {"b":2}`, `{"a[b]":1}`, `{"":1}`, `{"a":`, `"x"`} {
		if _, err := FlattenJSON([]byte(bad)); err == nil {
			t.Errorf("FlattenJSON(%s) = nil error, want one", bad)
		}
	}
}

func TestParseAssignments(t *testing.T) {
	got, err := ParseAssignments([]string{"email=a@b.c", "metadata[plan]=", "name=A=B"})
	if err != nil {
		t.Fatal(err)
	}
	want := Params{{"email", "a@b.c"}, {"metadata[plan]", ""}, {"name", "A=B"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	if _, err := ParseAssignments([]string{"email"}); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("missing '=': err = %v", err)
	}
}

func TestCanonicalIgnoresOrder(t *testing.T) {
	a := Params{{"name", "Ann"}, {"metadata[x]", "1"}, {"email", "a@b.c"}}
	b := Params{{"email", "a@b.c"}, {"name", "Ann"}, {"metadata[x]", "1"}}
	if a.Canonical() != b.Canonical() {
		t.Errorf("canonical forms differ:\n%s\n%s", a.Canonical(), b.Canonical())
	}
	c := Params{{"email", "a@b.c"}, {"name", "Ann"}, {"metadata[x]", "2"}}
	if a.Canonical() == c.Canonical() {
		t.Error("different values give the same canonical form")
	}
	// "=" and newlines in values cannot make two different rows collide.
	d := Params{{"a", "1\nb=2"}}
	e := Params{{"a", "1"}, {"b", "2"}}
	if d.Canonical() == e.Canonical() {
		t.Error("escaping: collision")
	}
}

func TestBuildTreeConflicts(t *testing.T) {
	for _, p := range []Params{
		{{"metadata", ""}, {"metadata[a]", "b"}},
		{{"metadata[a]", "b"}, {"metadata", ""}},
		{{"email", "a"}, {"email", "b"}},
	} {
		if _, err := buildTree(p); err == nil {
			t.Errorf("buildTree(%v) = nil error, want a conflict", p)
		}
	}
	n, err := buildTree(Params{{"expand[]", "a"}, {"expand[]", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.children["expand"].keys; !reflect.DeepEqual(got, []string{"0", "1"}) {
		t.Errorf("expand[] indexes = %v", got)
	}
}

func TestReadRowsCSV(t *testing.T) {
	in := "\ufeffid,email,ext,metadata[plan],drop\n" +
		"cus_1,a@b.c,e1,pro,x\n" +
		",b@b.c,e2,,y\n" +
		"only,two\n"
	m, err := ParseMapping([]string{"ext=metadata[external_id]", "drop="})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows(strings.NewReader(in), FormatCSV, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	if rows[0].Num != 1 || rows[0].ID != "cus_1" {
		t.Errorf("row 1 = %+v", rows[0])
	}
	want := Params{{"email", "b@b.c"}, {"metadata[external_id]", "e2"}}
	if diff := cmp.Diff(rows[1].Params, want); diff != "" {
		t.Errorf("row 2 params (-got +want):\n%s", diff)
	}
	if rows[2].Err == nil || rows[2].Num != 3 {
		t.Errorf("row 3 = %+v, want a field-count error", rows[2])
	}
	if _, err := ReadRows(strings.NewReader("a,a\n1,2\n"), FormatCSV, nil); err == nil {
		t.Error("duplicate header: no error")
	}
	if _, err := ReadRows(strings.NewReader("a[b,c\n1,2\n"), FormatCSV, nil); err == nil {
		t.Error("bad header key: no error")
	}
}

func TestReadRowsJSONL(t *testing.T) {
	in := `{"id":"cus_1","email":"a@b.c","ext":{"k":"v"}}` + "\n\n" + `{"email":` + "\n" + `{"items":[{"price":"p"}]}`
	rows, err := ReadRows(strings.NewReader(in), FormatJSONL, Mapping{"ext": "metadata"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	if rows[0].ID != "cus_1" || !reflect.DeepEqual(rows[0].Params, Params{{"email", "a@b.c"}, {"metadata[k]", "v"}}) {
		t.Errorf("line 1 = %+v", rows[0])
	}
	if rows[1].Num != 3 || rows[1].Err == nil {
		t.Errorf("line 3 = %+v, want a JSON error", rows[1])
	}
	if rows[2].Num != 4 || !reflect.DeepEqual(rows[2].Params, Params{{"items[0][price]", "p"}}) {
		t.Errorf("line 4 = %+v", rows[2])
	}
}

func TestStreamForID(t *testing.T) {
	for id, want := range map[string]string{
		"cus_123": "customers", "in_1": "invoices", "ch_1": "charges", "pi_1": "payment_intents",
		"sub_1": "subscriptions", "sub_sched_1": "subscription_schedules", "prod_1": "products",
		"price_1": "prices", "seti_1": "setup_intents", "si_1": "subscriptions_items",
	} {
		got, err := StreamForID(id)
		if err != nil || got != want {
			t.Errorf("StreamForID(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := StreamForID("SUMMER25"); err == nil || !strings.Contains(err.Error(), "get coupons SUMMER25") {
		t.Errorf("unknown prefix: err = %v", err)
	}
}

// FuzzRowToParams checks the CSV/JSONL row → parameters translation: no
// panics, every produced key parses back to a path that formats to the same
// key, and a JSON object rebuilt from flattened params flattens the same.
func FuzzRowToParams(f *testing.F) {
	f.Add(`{"email":"a@b.c","metadata":{"plan":"pro"},"items":[{"price":"p","quantity":2}]}`, "email,metadata[plan]\na@b.c,pro\n")
	f.Add(`{"a":null,"b":[],"c":{},"d":true,"e":1.5e3}`, "id,x\n1,\"q\"\"uoted\"\n")
	f.Add(`{"a":[[1,2],[3]]}`, "a[0],a[1]\n,\n")
	f.Add(`not json`, "\"unterminated\n")
	f.Fuzz(func(t *testing.T, jsonLine, csvText string) {
		p, err := FlattenJSON([]byte(jsonLine))
		if err == nil {
			checkKeys(t, p)
			if _, err := buildTree(p); err != nil {
				t.Fatalf("flattened params do not nest: %v (%q)", err, jsonLine)
			}
			_ = Validate(customerCreate(), p) // must not panic
			// Rebuild a JSON document from the params and flatten again.
			var doc any
			dec := json.NewDecoder(strings.NewReader(jsonLine))
			dec.UseNumber()
			if err := dec.Decode(&doc); err == nil {
				p2, err := FlattenJSON(mustJSON(t, doc))
				if err != nil {
					t.Fatalf("re-flatten: %v", err)
				}
				if p.Canonical() != p2.Canonical() {
					t.Fatalf("round trip changed params:\n%s\n%s", p.Canonical(), p2.Canonical())
				}
			}
		}
		rows, err := ReadRows(strings.NewReader(csvText), FormatCSV, nil)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Num < 1 {
				t.Fatalf("row number %d", r.Num)
			}
			checkKeys(t, r.Params)
			_ = Validate(customerCreate(), r.Params)
			for _, kv := range r.Params {
				if kv.Value == "" {
					t.Fatalf("empty CSV cell became a parameter: %q", kv.Key)
				}
			}
		}
	})
}

func checkKeys(t *testing.T, p Params) {
	t.Helper()
	for _, kv := range p {
		path, err := ParseKey(kv.Key)
		if err != nil {
			t.Fatalf("produced key %q does not parse: %v", kv.Key, err)
		}
		if FormatKey(path) != kv.Key {
			t.Fatalf("key %q formats back as %q", kv.Key, FormatKey(path))
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIDPrefixStreamsExist keeps the prefix table in step with the catalog.
func TestIDPrefixStreamsExist(t *testing.T) {
	if len(catalogAll()) == 0 {
		t.Skip("the catalog is not generated yet")
	}
	for p, name := range idPrefixes {
		if _, err := LookupStream(name); err != nil {
			t.Errorf("prefix %s: %v", p, err)
		}
	}
}
