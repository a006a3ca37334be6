package stripe_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/stripe"
)

// page100 is a list page of 100 customer-sized (~1.5 KB) objects.
func page100() []byte {
	var objs []string
	pad := strings.Repeat("x", 1300)
	for i := range 100 {
		objs = append(objs, fmt.Sprintf(`{"id":"cus_%06d","object":"customer","created":1700000000,"metadata":{"k":"v"},"address":{"city":"Paris","line1":"1 rue"},"description":%q}`, i, pad))
	}
	return []byte(`{"object":"list","url":"/v1/customers","has_more":true,"data":[` + strings.Join(objs, ",") + `]}`)
}

func BenchmarkParsePage(b *testing.B) {
	body := page100()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := stripe.ParsePage(body)
		if err != nil || len(p.Data) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkListPage measures the client's own cost per page (pacing off,
// local server answering at once).
func BenchmarkListPage(b *testing.B) {
	body := page100()
	srv := newFaultServerTB(b, func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	c, err := stripe.New(stripe.Config{Key: testKey, APIBase: srv.URL, GlobalRPS: 1e9, EndpointRPS: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ListPage(context.Background(), "/v1/customers", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
