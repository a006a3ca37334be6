package cli_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/emulator"
)

// TestWritesThroughAStrictGateway runs create and load through a gateway
// that, like many proxies, answers a request body without Content-Length
// with 411: every parameter must arrive, none may be lost on the way.
func TestWritesThroughAStrictGateway(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(emulator.Config{Seed: 3, Objects: 100, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	var posts, refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			if len(r.TransferEncoding) > 0 || r.ContentLength < 0 {
				refused.Add(1)
				http.Error(w, "411 Length Required", http.StatusLengthRequired)
				return
			}
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	code, out, errOut := runCLI(t, srv.URL, opsKey, "create", "customers", "email=ann@example.com", "name=Ann Lée", "metadata[plan]=pro", "address[city]=Paris", "--format", "json")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	if got := gjson.GetMany(out, "email", "name", "metadata.plan", "address.city"); got[0].Str != "ann@example.com" || got[1].Str != "Ann Lée" || got[2].Str != "pro" || got[3].Str != "Paris" {
		t.Errorf("created customer lost parameters: %s", out)
	}

	file := filepath.Join(t.TempDir(), "people.csv")
	csv := "email,name,metadata[external_id],address[city]\nbo@example.com,Bo,ext-1,Lyon\ncy@example.com,Cy,ext-2,Nice\n"
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, srv.URL, opsKey, "load", "customers", file, "--mode", "create")
	if code != 0 || !strings.Contains(out, "created 2") {
		t.Fatalf("load: exit %d\n%s%s", code, out, errOut)
	}
	found := 0
	for _, o := range emu.Objects(emu.MainAccountID(), "customers") {
		c := gjson.ParseBytes(o)
		switch c.Get("email").Str {
		case "bo@example.com", "cy@example.com":
			found++
			if c.Get("metadata.external_id").Str == "" || c.Get("address.city").Str == "" || c.Get("name").Str == "" {
				t.Errorf("loaded customer lost parameters: %s", o)
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d of the 2 loaded customers", found)
	}
	if posts.Load() < 3 || refused.Load() != 0 {
		t.Errorf("%d POSTs, %d refused for want of a Content-Length; want at least 3 and none refused", posts.Load(), refused.Load())
	}
}
