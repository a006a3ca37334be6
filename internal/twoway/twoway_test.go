package twoway_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "github.com/ncruces/go-sqlite3/driver"
	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/all"
	"github.com/stripeline/stripeline/internal/dest/mysql"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/enginetest"
	"github.com/stripeline/stripeline/internal/stripe"
	"github.com/stripeline/stripeline/internal/twoway"
)

var streams = []string{"customers", "products", "prices"}

// harness is an emulator, a replica and the user's own connection to it.
type harness struct {
	emu    *emulator.Emulator
	client *stripe.Client
	dst    dest.Destination
	db     *sql.DB // the user's connection
	pg     bool
	// backend is sqlite, postgres or mysql.
	backend string
	base    string // the emulator's URL
	cfg     *twoway.Config
	hook    func(stream, id string) error
	// dieAfterPush ends the run right after its push, before the pull.
	dieAfterPush bool
	// lockWait is the run's Options.LockWait.
	lockWait time.Duration
}

// dyingPusher is a process killed between the push and the pull.
type dyingPusher struct{ p engine.Pusher }

func (d dyingPusher) Push(ctx context.Context, run *engine.PushRun) (any, error) {
	rep, err := d.p.Push(ctx, run)
	if err != nil {
		return rep, err
	}
	return rep, errCrash
}

type backend struct {
	name string
	open func(t *testing.T) (destURL string, user *sql.DB, pg bool)
}

func backends(t *testing.T) []backend {
	out := []backend{{"sqlite", func(t *testing.T) (string, *sql.DB, bool) {
		path := filepath.Join(t.TempDir(), "replica.db")
		db, err := sql.Open("sqlite3", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return "sqlite://" + path, db, false
	}}}
	if base := os.Getenv("STRIPELINE_TEST_POSTGRES"); base != "" {
		out = append(out, backend{"postgres", func(t *testing.T) (string, *sql.DB, bool) {
			ctx := context.Background()
			schema := "stripeline_twoway_" + randHex()
			t.Cleanup(func() {
				c, err := pgx.Connect(ctx, base)
				if err != nil {
					t.Errorf("drop schema: %v", err)
					return
				}
				defer c.Close(ctx)
				c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			})
			u, _ := url.Parse(base)
			q := u.Query()
			q.Set("schema", schema)
			u.RawQuery = q.Encode()
			uq := u.Query()
			uq.Del("schema")
			uq.Set("search_path", schema)
			user := *u
			user.RawQuery = uq.Encode()
			db, err := sql.Open("pgx", user.String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return u.String(), db, true
		}})
	} else {
		t.Log("STRIPELINE_TEST_POSTGRES is not set: PostgreSQL left out")
	}
	if base := os.Getenv("STRIPELINE_TEST_MYSQL"); base != "" {
		out = append(out, backend{"mysql", func(t *testing.T) (string, *sql.DB, bool) {
			dsn, _, err := mysql.DSN(base)
			if err != nil {
				t.Fatal(err)
			}
			admin, err := sql.Open("mysql", dsn)
			if err != nil {
				t.Fatal(err)
			}
			name := "stripeline_twoway_" + randHex()
			if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				admin.Exec("DROP DATABASE IF EXISTS " + name)
				admin.Close()
			})
			u, _ := url.Parse(base)
			u.Path = "/" + name
			udsn, _, err := mysql.DSN(u.String())
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("mysql", udsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return u.String(), db, false
		}})
	} else {
		t.Log("STRIPELINE_TEST_MYSQL is not set: MySQL left out")
	}
	return out
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// each runs fn on every backend, in parallel.
func each(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			destURL, user, pg := b.open(t)
			h := newHarness(t, destURL)
			h.db, h.pg, h.backend = user, pg, b.name
			fn(t, h)
		})
	}
}

func newHarness(t *testing.T, destURL string) *harness {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 7, Objects: 60, ConnectedAccounts: -1, TestClocks: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c, err := stripe.New(stripe.Config{Key: "sk_test_twoway", APIBase: srv.URL, GlobalRPS: 100000, EndpointRPS: 100000, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dest.Open(context.Background(), destURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &harness{emu: emu, client: c, dst: d, base: srv.URL, cfg: newHarnessConfig()}
}

func newHarnessConfig() *twoway.Config {
	return &twoway.Config{Streams: map[string][]string{
		"customers": {"email", "name", "description", "phone", "metadata"},
		"products":  {"name", "description", "active", "metadata"},
		"prices":    {"active", "nickname", "metadata"},
	}}
}

// run is one two-way run: push, then pull.
func (h *harness) run(t *testing.T) (*engine.Result, *twoway.Report, error) {
	t.Helper()
	p, err := twoway.New(h.cfg, h.client, h.dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.hook != nil {
		p.SetAfterSend(h.hook)
	}
	var push engine.Pusher = p
	if h.dieAfterPush {
		push = dyingPusher{p}
	}
	res, err := engine.Sync(context.Background(), engine.Options{Client: h.client, Dest: h.dst, Pipeline: "tw", Streams: streams,
		TwoWay: h.cfg.EngineFields(), Push: push, LockWait: h.lockWait})
	var rep *twoway.Report
	if res != nil {
		rep, _ = res.TwoWay.(*twoway.Report)
	}
	return res, rep, err
}

// assertConsistent holds the replica to the account (replicacheck
// quotes names as SQLite and PostgreSQL do, so MySQL is left to the
// row checks of each test).
func (h *harness) assertConsistent(t *testing.T) {
	t.Helper()
	if h.backend != "mysql" {
		enginetest.AssertReplicaEqualsAccount(t, h.dst.(dest.Querier), h.emu, "", streams)
	}
}

func (h *harness) mustRun(t *testing.T) *twoway.Report {
	t.Helper()
	_, rep, err := h.run(t)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

// exec runs the user's statement (? placeholders).
func (h *harness) exec(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	if h.pg {
		n := 0
		var b strings.Builder
		for _, r := range q {
			if r == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(r)
		}
		q = b.String()
	}
	res, err := h.db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, _ := res.RowsAffected()
	return n
}

// row reads a replica row's columns through the destination.
func (h *harness) row(t *testing.T, table, id string) map[string]any {
	t.Helper()
	cols, rows, err := h.dst.(dest.Querier).Query(context.Background(), "SELECT * FROM "+table+" WHERE id = ?", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%s %s: %d rows", table, id, len(rows))
	}
	out := map[string]any{}
	for i, c := range cols {
		out[c] = rows[0][i]
	}
	return out
}

// object is the emulator's current object.
func (h *harness) object(t *testing.T, stream, id string) gjson.Result {
	t.Helper()
	for _, raw := range h.emu.Objects(h.emu.MainAccountID(), stream) {
		if gjson.GetBytes(raw, "id").Str == id {
			return gjson.ParseBytes(raw)
		}
	}
	t.Fatalf("no %s %s in the emulator", stream, id)
	return gjson.Result{}
}

// someID is an object id of a stream.
func (h *harness) someID(t *testing.T, stream string, n int) string {
	t.Helper()
	objs := h.emu.Objects(h.emu.MainAccountID(), stream)
	if len(objs) <= n {
		t.Fatalf("only %d %s", len(objs), stream)
	}
	return gjson.GetBytes(objs[n], "id").Str
}

// events counts the emulator's events of a type about an object.
func (h *harness) events(typ, id string) int {
	n := 0
	for _, raw := range h.emu.Objects(h.emu.MainAccountID(), "events") {
		ev := gjson.ParseBytes(raw)
		if ev.Get("type").Str == typ && ev.Get("data.object.id").Str == id {
			n++
		}
	}
	return n
}

func metadataOf(t *testing.T, v any) map[string]any {
	t.Helper()
	s, _ := v.(string)
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("metadata %v: %v", v, err)
	}
	return m
}

func TestUpdatesFlowToStripe(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t) // the first run pulls
		id := h.someID(t, "customers", 3)
		other := h.someID(t, "customers", 4)
		h.exec(t, "UPDATE customers SET name = ?, email = ?, metadata = ? WHERE id = ?", "Ada Lovelace", "ada@example.com", `{"tier":"gold"}`, id)
		before := h.events("customer.updated", other)
		rep := h.mustRun(t)
		if rep.Updated != 1 || len(rep.Conflicts) != 0 || len(rep.Rejected) != 0 {
			t.Fatalf("report %+v, want one update", rep)
		}
		obj := h.object(t, "customers", id)
		if obj.Get("name").Str != "Ada Lovelace" || obj.Get("email").Str != "ada@example.com" || obj.Get("metadata.tier").Str != "gold" {
			t.Fatalf("emulator's customer: %s", obj.Raw)
		}
		row := h.row(t, "customers", id)
		if row["name"] != "Ada Lovelace" || row["email"] != "ada@example.com" || metadataOf(t, row["metadata"])["tier"] != "gold" {
			t.Fatalf("replica row: %v", row)
		}
		if h.events("customer.updated", other) != before {
			t.Fatal("an unchanged customer was written")
		}
		h.assertConsistent(t)
		// The pull read the run's own write back without taking it for a change.
		rep = h.mustRun(t)
		if rep.Updated != 0 || len(rep.Conflicts) != 0 {
			t.Fatalf("second run: %+v, want nothing to push", rep)
		}
		if n := h.events("customer.updated", id); n != 1 {
			t.Fatalf("%d customer.updated events, want 1", n)
		}
	})
}

func TestNewRowCreatesObject(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t)
		h.exec(t, "INSERT INTO products (id, name, description, metadata) VALUES (NULL, ?, ?, ?)", "Widget Pro", "made in SQL", `{"sku":"W-1"}`)
		rep := h.mustRun(t)
		if rep.Created != 1 {
			t.Fatalf("report %+v, want one create", rep)
		}
		_, rows, err := h.dst.(dest.Querier).Query(context.Background(), "SELECT id FROM products WHERE name = ?", "Widget Pro")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Fatalf("%d rows named Widget Pro, want 1", len(rows))
		}
		id, _ := rows[0][0].(string)
		if !strings.HasPrefix(id, "prod_") {
			t.Fatalf("id written back %q, want a product id", id)
		}
		obj := h.object(t, "products", id)
		if obj.Get("name").Str != "Widget Pro" || obj.Get("metadata.sku").Str != "W-1" {
			t.Fatalf("emulator's product: %s", obj.Raw)
		}
		rep = h.mustRun(t)
		if rep.Created != 0 || rep.Updated != 0 {
			t.Fatalf("second run: %+v, want nothing", rep)
		}
		h.assertConsistent(t)
		if n := countNamed(h, "Widget Pro"); n != 1 {
			t.Fatalf("%d products named Widget Pro in the emulator, want 1", n)
		}
	})
}

func countNamed(h *harness, name string) int {
	n := 0
	for _, raw := range h.emu.Objects(h.emu.MainAccountID(), "products") {
		if gjson.GetBytes(raw, "name").Str == name {
			n++
		}
	}
	return n
}

// stripeEdit changes a customer in Stripe, as the Dashboard would.
func (h *harness) stripeEdit(t *testing.T, id string, form url.Values) {
	t.Helper()
	if _, err := h.client.Do(context.Background(), &stripe.Request{Method: "POST", Path: "/v1/customers/" + id, Body: form}); err != nil {
		t.Fatal(err)
	}
}

func TestConflictPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy twoway.Policy
		// edited is the database edit's time relative to Stripe's (newest-wins)
		edited time.Duration
		winner string
	}{
		{twoway.StripeWins, 0, "stripe"},
		{twoway.DatabaseWins, 0, "database"},
		{twoway.NewestWins, -time.Hour, "stripe"},
		{twoway.NewestWins, time.Hour, "database"},
	} {
		t.Run(string(tc.policy)+"/"+tc.edited.String(), func(t *testing.T) {
			each(t, func(t *testing.T, h *harness) {
				h.cfg.Conflicts = tc.policy
				h.mustRun(t)
				id := h.someID(t, "customers", 2)
				h.stripeEdit(t, id, url.Values{"name": {"From Stripe"}, "phone": {"+15550001"}})
				if tc.edited != 0 {
					h.exec(t, "UPDATE customers SET name = ?, description = ?, "+"_stripeline_edited_at = ? WHERE id = ?", "From SQL", "sql side", h.emu.Now().Add(tc.edited).Unix(), id)
				} else {
					h.exec(t, "UPDATE customers SET name = ?, description = ? WHERE id = ?", "From SQL", "sql side", id)
				}
				rep := h.mustRun(t)
				if len(rep.Conflicts) != 1 {
					t.Fatalf("conflicts %+v, want one", rep.Conflicts)
				}
				c := rep.Conflicts[0]
				if c.Stream != "customers" || c.ID != id || c.Field != "name" || string(c.Database) != `"From SQL"` || string(c.Stripe) != `"From Stripe"` || c.Winner != tc.winner {
					t.Fatalf("conflict %+v", c)
				}
				want := "From Stripe"
				if tc.winner == "database" {
					want = "From SQL"
				}
				obj := h.object(t, "customers", id)
				row := h.row(t, "customers", id)
				if obj.Get("name").Str != want || row["name"] != want {
					t.Fatalf("name: Stripe %q, replica %v, want %q", obj.Get("name").Str, row["name"], want)
				}
				// Both sides' other edits went through: no conflict there.
				if obj.Get("description").Str != "sql side" || row["phone"] != "+15550001" {
					t.Fatalf("non-conflicting edits lost: Stripe %s, replica %v", obj.Raw, row)
				}
				// The run record keeps the conflict, the losing value included.
				runs, err := h.dst.Runs(context.Background(), "tw", 1)
				if err != nil {
					t.Fatal(err)
				}
				rec := gjson.GetBytes(runs[0].Streams, "two_way.conflicts.0")
				if rec.Get("database").Str != "From SQL" || rec.Get("stripe").Str != "From Stripe" || rec.Get("winner").Str != tc.winner {
					t.Fatalf("run record's conflict: %s", rec.Raw)
				}
				// The database's losing value stays in the change history:
				// the pull's overwrite logged it as the row's previous value.
				if tc.winner == "stripe" {
					_, prevs, err := h.dst.(dest.Querier).Query(context.Background(), "SELECT prev FROM "+dest.HistoryTable+" WHERE table_name = ? AND row_id = ?", "customers", id)
					if err != nil {
						t.Fatal(err)
					}
					found := false
					for _, p := range prevs {
						if s, _ := p[0].(string); gjson.Get(s, "name").Str == "From SQL" {
							found = true
						}
					}
					if !found {
						t.Fatalf("the history of %s lacks the database's losing name: %v", id, prevs)
					}
				}
				if rep := h.mustRun(t); len(rep.Conflicts) != 0 || rep.Updated != 0 {
					t.Fatalf("third run %+v, want nothing", rep)
				}
				h.assertConsistent(t)
			})
		})
	}
}

var errCrash = errors.New("crash")

func TestCrashBetweenPushAndPullAppliesOnce(t *testing.T) {
	for _, at := range []string{"after Stripe answered", "after the push"} {
		t.Run(at, func(t *testing.T) { crashOnce(t, at) })
	}
}

func crashOnce(t *testing.T, at string) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t)
		id := h.someID(t, "customers", 5)
		h.exec(t, "UPDATE customers SET email = ? WHERE id = ?", "once@example.com", id)
		h.exec(t, "INSERT INTO products (id, name) VALUES (NULL, ?)", "Crash Widget")
		// Stripe applies the writes; the process dies before the replica
		// records them, or once it has and before the pull.
		if at == "after the push" {
			h.dieAfterPush = true
		} else {
			h.hook = func(string, string) error { return errCrash }
		}
		if _, _, err := h.run(t); !errors.Is(err, errCrash) {
			t.Fatalf("run: %v, want the crash", err)
		}
		h.hook, h.dieAfterPush = nil, false
		rep := h.mustRun(t)
		if n := h.events("customer.updated", id); n != 1 {
			t.Fatalf("%d customer.updated events, want exactly 1", n)
		}
		if n := countNamed(h, "Crash Widget"); n != 1 {
			t.Fatalf("%d products created, want exactly 1 (report %+v)", n, rep)
		}
		if h.row(t, "customers", id)["email"] != "once@example.com" {
			t.Fatal("replica lost the edit")
		}
		_, rows, err := h.dst.(dest.Querier).Query(context.Background(), "SELECT id FROM products WHERE name = ?", "Crash Widget")
		if err != nil || len(rows) != 1 || !strings.HasPrefix(rows[0][0].(string), "prod_") {
			t.Fatalf("replica's new product: %v %v", rows, err)
		}
		if rep := h.mustRun(t); rep.Updated+rep.Created != 0 {
			t.Fatalf("third run %+v, want nothing", rep)
		}
		h.assertConsistent(t)
	})
}

func TestRejectedRowReportedOthersApplied(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t)
		bad, good := h.someID(t, "customers", 1), h.someID(t, "customers", 6)
		h.exec(t, "UPDATE customers SET email = ? WHERE id = ?", "not-an-email", bad)
		h.exec(t, "UPDATE customers SET name = ? WHERE id = ?", "Grace Hopper", good)
		shape := h.someID(t, "customers", 9)
		mdBefore := h.object(t, "customers", shape).Get("metadata").Raw
		h.exec(t, "UPDATE customers SET metadata = ? WHERE id = ?", `[1, 2]`, shape)
		price := h.someID(t, "prices", 0)
		h.exec(t, "UPDATE prices SET _stripeline_delete = ? WHERE id = ?", true, price)
		res, rep, err := h.run(t)
		if !errors.Is(err, engine.ErrRowsRejected) || res.Status != "failed" {
			t.Fatalf("run: %v (%s), want rows rejected", err, res.Status)
		}
		if rep.Updated != 1 || h.object(t, "customers", good).Get("name").Str != "Grace Hopper" {
			t.Fatalf("the good row was not applied: %+v", rep)
		}
		var email, del *twoway.Rejection
		for i, r := range rep.Rejected {
			switch r.ID {
			case bad:
				email = &rep.Rejected[i]
			case price:
				del = &rep.Rejected[i]
			}
		}
		if email == nil || email.Param != "email" || !strings.Contains(email.Message, "Invalid email address") {
			t.Fatalf("rejections %+v, want the email refused with Stripe's message", rep.Rejected)
		}
		if del == nil || !strings.Contains(del.Message, "active to false") {
			t.Fatalf("rejections %+v, want the price's deletion refused with the fix", rep.Rejected)
		}
		var md *twoway.Rejection
		for i, r := range rep.Rejected {
			if r.ID == shape {
				md = &rep.Rejected[i]
			}
		}
		if md == nil || md.Param != "metadata" || !strings.Contains(md.Message, "JSON object") {
			t.Fatalf("rejections %+v, want the metadata that is no object refused", rep.Rejected)
		}
		if got := h.object(t, "customers", shape).Get("metadata").Raw; got != mdBefore {
			t.Fatalf("Stripe's metadata changed from %s to %s", mdBefore, got)
		}
		if h.object(t, "customers", bad).Get("email").Str == "not-an-email" {
			t.Fatal("the emulator took the invalid email")
		}
		// Unchanged, it is not sent again; changed, it is.
		posts := h.emu.Stats().ByEndpoint["POST /v1/customers/{customer}"]
		if _, rep, err = h.run(t); err != nil || rep.Held != 3 || len(rep.Rejected) != 0 {
			t.Fatalf("second run: %v %+v, want the three refused rows held", err, rep)
		}
		if n := h.emu.Stats().ByEndpoint["POST /v1/customers/{customer}"]; n != posts {
			t.Fatalf("the refused row was sent again (%d updates, had %d)", n, posts)
		}
		h.exec(t, "UPDATE customers SET email = ? WHERE id = ?", "fixed@example.com", bad)
		if rep := h.mustRun(t); rep.Updated != 1 || h.object(t, "customers", bad).Get("email").Str != "fixed@example.com" {
			t.Fatalf("fixed row: %+v", rep)
		}
	})
}

func TestMarkedRowDeletedInStripe(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t)
		id := h.someID(t, "customers", 7)
		h.exec(t, "UPDATE customers SET _stripeline_delete = ? WHERE id = ?", true, id)
		if rep := h.mustRun(t); rep.Deleted != 1 {
			t.Fatalf("report %+v, want one delete", rep)
		}
		for _, raw := range h.emu.Objects(h.emu.MainAccountID(), "customers") {
			if gjson.GetBytes(raw, "id").Str == id && !gjson.GetBytes(raw, "deleted").Bool() {
				t.Fatal("the customer is still in Stripe")
			}
		}
		if del, _ := h.row(t, "customers", id)[dest.ColDeleted].(bool); !del && h.row(t, "customers", id)[dest.ColDeleted] != int64(1) {
			t.Fatalf("replica row not flagged deleted: %v", h.row(t, "customers", id))
		}
		if rep := h.mustRun(t); rep.Deleted != 0 || len(rep.Rejected) != 0 {
			t.Fatalf("second run %+v, want nothing", rep)
		}
	})
}

// A webhook's write remembers the two-way fields too, so the next run
// takes Stripe's change for no database edit.
func TestWebhookWritesRemember(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		h.mustRun(t)
		id := h.someID(t, "customers", 8)
		h.stripeEdit(t, id, url.Values{"name": {"Via Webhook"}})
		var ev []byte
		for _, raw := range h.emu.Objects(h.emu.MainAccountID(), "events") {
			if gjson.GetBytes(raw, "type").Str == "customer.updated" && gjson.GetBytes(raw, "data.object.id").Str == id {
				ev = raw
				break
			}
		}
		a, err := engine.NewApplier(context.Background(), engine.ApplyOptions{Client: h.client, Dest: h.dst, Pipeline: "tw", Streams: streams, TwoWay: h.cfg.EngineFields()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(context.Background(), ev, time.Now()); err != nil {
			t.Fatal(err)
		}
		row := h.row(t, "customers", id)
		if row["name"] != "Via Webhook" || gjson.Get(row[engine.ColWritten].(string), "name").Str != "Via Webhook" {
			t.Fatalf("webhook's row: %v", row)
		}
		if rep := h.mustRun(t); rep.Updated != 0 || len(rep.Conflicts) != 0 {
			t.Fatalf("run after the webhook: %+v, want nothing to push", rep)
		}
	})
}
