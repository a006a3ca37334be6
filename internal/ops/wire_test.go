package ops

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stripeline/stripeline/internal/stripe"
)

// TestLoadOverTheWire runs a load through the real Stripe client against a
// small handler: idempotency keys reach the server, replays are recognised,
// and Stripe's error param reaches the row's report.
func TestLoadOverTheWire(t *testing.T) {
	fakeCatalog(t)
	var mu sync.Mutex
	seen := map[string]string{} // idempotency key → id
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"object":"list","data":[],"has_more":false,"url":"/v1/customers"}`)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if !strings.Contains(r.PostForm.Get("email"), "@") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"email_invalid","param":"email","message":"Invalid email address: `+r.PostForm.Get("email")+`"}}`)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		if id, ok := seen[key]; ok {
			w.Header().Set("Idempotent-Replayed", "true")
			fmt.Fprintf(w, `{"id":%q,"object":"customer"}`, id)
			return
		}
		n++
		id := fmt.Sprintf("cus_%d", n)
		seen[key] = id
		fmt.Fprintf(w, `{"id":%q,"object":"customer","metadata":{"external_id":%q}}`, id, r.PostForm.Get("metadata[external_id]"))
	}))
	defer srv.Close()
	c, err := stripe.New(stripe.Config{Key: "sk_test_wire", APIBase: srv.URL, GlobalRPS: 10000, EndpointRPS: 10000})
	if err != nil {
		t.Fatal(err)
	}
	o := New(c, nil)
	rows := csvRows(t, customersCSV(20)+"broken,Bad,ext-x\n")
	res, err := o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeCreate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Created != 20 || res.Summary.Failed != 1 {
		t.Fatalf("first run: %v", res.Summary)
	}
	if got, want := res.Results[20].Error, "email: Invalid email address: broken"; got != want {
		t.Errorf("row 21 error = %q, want %q", got, want)
	}
	res, err = o.Load(context.Background(), rows, LoadOptions{Stream: "customers", Mode: ModeCreate})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Unchanged != 20 || res.Summary.Created != 0 {
		t.Fatalf("second run: %v", res.Summary)
	}
	if n != 20 {
		t.Errorf("server created %d customers, want 20", n)
	}
}
