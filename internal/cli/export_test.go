package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExportFromStripe(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/products" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"object":"list","url":"/v1/products","has_more":false,"data":[
			{"id":"prod_1","object":"product","active":true,"name":"Gold","created":1700000000,"metadata":{"tier":"1"},"default_price":{"id":"price_1","object":"price"}},
			{"id":"prod_2","object":"product","active":false,"name":"Silver, \"old\"","created":1600000000,"metadata":{}}]}`))
	}))
	defer srv.Close()
	code, out, errOut := invoke(t, testEnv(t, map[string]string{"STRIPE_API_KEY": "sk_test_123"}, "export", "products", "--from-stripe", "--format", "jsonl", "--api-base", srv.URL))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", out)
	}
	for _, want := range []string{`"id":"prod_1"`, `"active":true`, `"default_price":"price_1"`, `"metadata":{"tier":"1"}`, `"created":1700000000`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %s lacks %s", lines[0], want)
		}
	}
	if strings.Contains(out, "sk_test_123") || strings.Contains(errOut, "sk_test_123") {
		t.Error("the key was printed")
	}
}
