package emulator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestPostBodiesItCannotReadAreRefused: a POST body that is not
// form-encoded is answered 400 in Stripe's words, not taken for a request
// without parameters; form bodies work with a length or chunked.
func TestPostBodiesItCannotReadAreRefused(t *testing.T) {
	e := small(t, Config{Seed: 9})
	srv := httptest.NewServer(e)
	defer srv.Close()
	post := func(contentType string, body io.Reader) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+"/v1/customers", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer sk_test_emulator1234")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	refused := []struct {
		name, contentType, body string
	}{
		{"json", "application/json", `{"email":"json@example.com"}`},
		{"text", "text/plain; charset=utf-8", "email=text%40example.com"},
		{"no content type", "", "email=none%40example.com"},
	}
	for _, tt := range refused {
		code, b := post(tt.contentType, strings.NewReader(tt.body))
		msg := gjson.GetBytes(b, "error.message").Str
		if code != 400 || gjson.GetBytes(b, "error.type").Str != "invalid_request_error" || !strings.Contains(msg, "unsupported Content-Type "+tt.contentType+".") {
			t.Errorf("%s: %d %s, want 400 invalid_request_error naming the Content-Type", tt.name, code, b)
		}
	}
	for _, email := range []string{"json@example.com", "text@example.com", "none@example.com"} {
		if got := pageAll(t, e, "/v1/customers", "email", email); len(got) != 0 {
			t.Errorf("a refused body created %v", got)
		}
	}

	// A form body of unknown length goes out chunked; it is decoded.
	form := url.Values{"email": {"chunked@example.com"}, "metadata[plan]": {"gold"}}
	code, b := post("application/x-www-form-urlencoded", io.MultiReader(strings.NewReader(form.Encode())))
	if code != 200 || gjson.GetBytes(b, "email").Str != "chunked@example.com" || gjson.GetBytes(b, "metadata.plan").Str != "gold" {
		t.Errorf("chunked form: %d %s", code, b)
	}
	// A POST without a body needs no Content-Type.
	if code, b := post("", nil); code != 200 || gjson.GetBytes(b, "object").Str != "customer" {
		t.Errorf("empty POST: %d %s", code, b)
	}
}
