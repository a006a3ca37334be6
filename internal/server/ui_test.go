package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/pipeline"
)

// browser is a logged-in UI session: its cookie and the CSRF token its
// pages carry.
type browser struct {
	f      *fixture
	cookie *http.Cookie
	csrf   string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func login(t *testing.T, f *fixture) *browser {
	t.Helper()
	r := f.form("/login", url.Values{"token": {f.token}, "next": {"/"}}, nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var c *http.Cookie
	for _, k := range (&http.Response{Header: r.Header}).Cookies() {
		if k.Name == "stripeline_session" {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Strict, Path=/", c)
	}
	b := &browser{f: f, cookie: c}
	page := b.get("/", http.StatusOK)
	m := csrfMeta.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page carries no CSRF token:\n%s", page)
	}
	b.csrf = m[1]
	return b
}

// form posts a form, with a cookie when given.
func (f *fixture) form(path string, v url.Values, c *http.Cookie) *response {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.http.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.AddCookie(c)
	}
	return f.send(req)
}

func (b *browser) get(path string, want int) string {
	b.f.t.Helper()
	req, _ := http.NewRequest("GET", b.f.http.URL+path, nil)
	req.AddCookie(b.cookie)
	r := b.f.send(req)
	if r.Status != want {
		b.f.t.Fatalf("GET %s: %d, want %d: %s", path, r.Status, want, r.Body)
	}
	return string(r.Body)
}

// post submits a form with the session's CSRF token.
func (b *browser) post(path string, v url.Values) *response {
	b.f.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	v.Set("_csrf", b.csrf)
	return b.f.form(path, v, b.cookie)
}

func TestUILoginSessionsAndCSRF(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	f.create("acme")

	// Without a session, pages send the browser to the login page.
	req, _ := http.NewRequest("GET", f.http.URL+"/pipelines/acme", nil)
	if r := f.send(req); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=%2Fpipelines%2Facme" {
		t.Fatalf("no session: %d %v", r.Status, r.Header.Get("Location"))
	}
	if r := f.form("/login", url.Values{"token": {"stl_wrong"}}, nil); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "not the server") {
		t.Fatalf("wrong token: %d %s", r.Status, r.Body)
	}
	if r := f.form("/login", url.Values{"token": {f.token}, "next": {"//evil.example/"}}, nil); r.Header.Get("Location") != "/" {
		t.Fatalf("login redirected to %q", r.Header.Get("Location"))
	}

	b := login(t, f)
	if page := b.get("/", http.StatusOK); !strings.Contains(page, `href="/pipelines/acme"`) {
		t.Fatalf("the list lacks the pipeline:\n%s", page)
	}
	// A form without the CSRF token is refused; with it, it acts.
	if r := f.form("/pipelines/acme/pause", url.Values{}, b.cookie); r.Status != http.StatusForbidden {
		t.Fatalf("pause without CSRF: %d", r.Status)
	}
	if r := b.post("/pipelines/acme/pause", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	if p, _ := f.svc.Get(context.Background(), "acme"); !p.Status.Paused {
		t.Fatal("the form did not pause the pipeline")
	}

	// The session reaches the API (the UI's script); changes need X-CSRF-Token.
	apiReq := func(method, path, csrf string) *response {
		req, _ := http.NewRequest(method, f.http.URL+path, nil)
		req.AddCookie(b.cookie)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		return f.send(req)
	}
	if r := apiReq("GET", "/api/v1/pipelines", ""); r.Status != http.StatusOK {
		t.Fatalf("API with a session: %d", r.Status)
	}
	if r := apiReq("POST", "/api/v1/pipelines/acme/resume", ""); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), `"csrf"`) {
		t.Fatalf("API change without CSRF: %d %s", r.Status, r.Body)
	}
	if r := apiReq("POST", "/api/v1/pipelines/acme/resume", b.csrf); r.Status != http.StatusOK {
		t.Fatalf("API change with CSRF: %d %s", r.Status, r.Body)
	}

	// A cross-site form post is refused before the CSRF check.
	cross, _ := http.NewRequest("POST", f.http.URL+"/pipelines/acme/pause", strings.NewReader("_csrf="+b.csrf))
	cross.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	cross.AddCookie(b.cookie)
	if r := f.send(cross); r.Status != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", r.Status)
	}

	// Rotating the token ends the session.
	rotate(t, f)
	req, _ = http.NewRequest("GET", f.http.URL+"/", nil)
	req.AddCookie(b.cookie)
	if r := f.send(req); r.Status != http.StatusSeeOther {
		t.Fatalf("session after rotation: %d", r.Status)
	}
	// Logging out ends a session too.
	b = login(t, f)
	if r := b.post("/logout", nil); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d", r.Status)
	}
	req, _ = http.NewRequest("GET", f.http.URL+"/", nil)
	req.AddCookie(b.cookie)
	if r := f.send(req); r.Status != http.StatusSeeOther {
		t.Fatalf("session after logout: %d", r.Status)
	}
}

func TestUIFormCreatesAndEditsKeepingSecrets(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	b := login(t, f)
	page := b.get("/new", http.StatusOK)
	if !strings.Contains(page, `name="streams" value="customers"`) || !strings.Contains(page, "Test connection") {
		t.Fatalf("the form lacks the stream picker or the connection test")
	}
	form := url.Values{
		"name": {"acme"}, "display_name": {"Acme"}, "key_mode": {"stored"}, "api_key": {"sk_test_formsecret123456"},
		"api_base": {f.emuURL}, "dest": {"postgres://app:hunter2pw@127.0.0.1:1/replica"},
		"streams": {"customers", "invoices"}, "fields.customers": {"id", "email"},
		"schedule_kind": {"every"}, "every": {"7h"}, "start_date": {"2024-02-01"}, "lookback_days": {"2"},
	}
	// A mistake shows the form again, with the field and what was typed.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("every", "soon")
	r := b.post("/new", bad)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "<b>schedule</b>") || !strings.Contains(string(r.Body), `value="Acme"`) {
		t.Fatalf("bad schedule: %d\n%s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "formsecret") {
		t.Fatal("the form shown again repeats the API key")
	}
	if r := b.post("/new", form); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/pipelines/acme" {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	p, err := f.svc.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.Schedule.String() != "every 7h" || len(p.Streams) != 2 || len(p.Fields["customers"]) != 2 || p.LookbackDays != 2 ||
		p.StartDate.Format("2006-01-02") != "2024-02-01" || p.Connection.KeyHint != "sk_test_…3456" {
		t.Fatalf("created %+v", p)
	}

	// No page, API answer or metric shows the key or the password.
	edit := b.get("/pipelines/acme/edit", http.StatusOK)
	for name, body := range map[string]string{
		"pipeline page": b.get("/pipelines/acme", http.StatusOK),
		"edit page":     edit,
		"list":          b.get("/", http.StatusOK),
		"api":           string(f.api("GET", "/api/v1/pipelines/acme", nil, http.StatusOK).Body),
		"api list":      string(f.api("GET", "/api/v1/pipelines", nil, http.StatusOK).Body),
		"metrics":       string(f.do("GET", "/metrics", "", nil).Body),
	} {
		if strings.Contains(body, "formsecret") || strings.Contains(body, "hunter2pw") {
			t.Errorf("%s shows a secret", name)
		}
	}
	if !strings.Contains(edit, "postgres://app:xxxxx@127.0.0.1:1/replica") || !strings.Contains(edit, `value="7h"`) || !strings.Contains(edit, `value="email" checked`) {
		t.Fatalf("the edit form is not filled in:\n%s", edit)
	}

	// Saving the edit form as shown keeps the password and the stored key.
	form.Set("dest", "postgres://app:xxxxx@127.0.0.1:1/replica")
	form.Set("api_key", "")
	form.Set("display_name", "Acme (renamed)")
	if r := b.post("/pipelines/acme/edit", form); r.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	p, _ = f.svc.Get(context.Background(), "acme")
	if p.Dest != "postgres://app:hunter2pw@127.0.0.1:1/replica" || p.Connection.KeyHint != "sk_test_…3456" || p.DisplayName != "Acme (renamed)" {
		t.Fatalf("after the edit: dest %s, key %s, display %q", p.RedactedDest(), p.Connection.KeyHint, p.DisplayName)
	}
}

func TestUIPagesShowARun(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.create("acme")
	b := login(t, f)
	r := b.post("/pipelines/acme/run", nil)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/runs/") {
		t.Fatalf("run now: %d %q", r.Status, loc)
	}
	var id int64
	for _, c := range strings.TrimPrefix(loc, "/runs/") {
		id = id*10 + int64(c-'0')
	}
	done, err := f.svc.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	run := b.get(loc, http.StatusOK)
	for _, want := range []string{"b-succeeded", "run started", "run succeeded", `<td class="mono">customers</td>`, groupDigits(done.Rows)} {
		if !strings.Contains(run, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	if strings.Contains(run, "data-follow") {
		t.Error("a finished run's page still follows its log")
	}
	page := b.get("/pipelines/acme", http.StatusOK)
	for _, want := range []string{"b-active", `<rect class="bar-succeeded"`, `href="/runs/` + itoa(id) + `"`, "Rows per run"} {
		if !strings.Contains(page, want) {
			t.Errorf("the pipeline page lacks %q", want)
		}
	}
	if live := b.get("/pipelines/acme/live", http.StatusOK); !strings.HasPrefix(strings.TrimSpace(live), `<div data-live="/pipelines/acme/live" data-active="0"`) {
		t.Errorf("the live fragment: %.200s", live)
	}
	if r := b.post("/pipelines/acme/delete", url.Values{"tables": {"drop"}}); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	d, err := dest.Open(context.Background(), f.pipelineJSON("acme")["dest"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.(dest.Reader).ReadRows(context.Background(), "customers"); !errors.Is(err, dest.ErrNoTable) {
		t.Fatalf("customers after a delete that drops the tables: %v", err)
	}
	if page := b.get("/", http.StatusOK); strings.Contains(page, "/pipelines/acme") {
		t.Fatal("the deleted pipeline is still listed")
	}
	b.get("/pipelines/acme", http.StatusNotFound)
}

// groupDigits prints 1234 as 1,234, as the pages do.
func groupDigits(n int64) string {
	s := itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestUISaysWhenTheConfigFileHoldsAPipeline(t *testing.T) {
	f := newFixture(t, fixtureOpts{noStart: true})
	p := pipeline.Pipeline{Name: "declared", Dest: "sqlite://" + f.dir + "/d.db", Source: "config",
		Connection: pipeline.Connection{KeyRef: "env:STRIPE_API_KEY_ACME", APIBase: f.emuURL}}
	if _, err := f.svc.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b := login(t, f)
	for path, want := range map[string]string{
		"/":                        `title="declared in the config file">config</span>`,
		"/pipelines/declared":      "declared in the config file: what it says wins at the next start",
		"/pipelines/declared/edit": "the file's settings apply again at the next start",
	} {
		if page := b.get(path, http.StatusOK); !strings.Contains(page, want) {
			t.Errorf("%s does not say %q", path, want)
		}
	}
}
