package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/ops"
	"github.com/stripeline/stripeline/internal/stripe"
)

// env is an emulator behind a test server and an Ops over it.
type env struct {
	emu    *emulator.Emulator
	client *stripe.Client
	ops    *ops.Ops
}

func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	if cfg.Objects == 0 {
		cfg.Objects = 200
	}
	cfg.ConnectedAccounts = -1
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c, err := stripe.New(stripe.Config{Key: "sk_test_ops", APIBase: srv.URL, GlobalRPS: 100000, EndpointRPS: 100000, MaxBackoff: time.Millisecond, MaxRetries: 20})
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, client: c, ops: ops.New(c, nil)}
}

// customers returns the emulator's customers by id.
func (e *env) customers(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, raw := range e.emu.Objects(e.emu.MainAccountID(), "customers") {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if del, _ := m["deleted"].(bool); del {
			continue
		}
		out[m["id"].(string)] = m
	}
	return out
}

func externalIDs(t *testing.T, objs map[string]map[string]any) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, o := range objs {
		md, _ := o["metadata"].(map[string]any)
		if v, ok := md["external_id"].(string); ok {
			ids[v]++
		}
	}
	return ids
}

func customersCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,name,metadata[external_id]\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "c%d@example.com,Customer %d,ext-%d\n", i, i, i)
	}
	return b.String()
}

func readCSV(t *testing.T, text string) []ops.Row {
	t.Helper()
	rows, err := ops.ReadRows(strings.NewReader(text), ops.FormatCSV, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestEmulatorLoad1000CreatesOnce(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 1})
	before := len(e.customers(t))
	rows := readCSV(t, customersCSV(1000))
	opt := ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate}
	res, err := e.ops.Load(context.Background(), rows, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Created != 1000 || !res.Summary.OK() {
		t.Fatalf("first run: %v", res.Summary)
	}
	if got := len(e.customers(t)) - before; got != 1000 {
		t.Fatalf("customers created = %d, want 1000", got)
	}
	res, err = e.ops.Load(context.Background(), rows, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Created != 0 || res.Summary.Unchanged != 1000 {
		t.Fatalf("second run: %v", res.Summary)
	}
	if got := len(e.customers(t)) - before; got != 1000 {
		t.Fatalf("customers after the re-run = %d, want 1000", got)
	}
}

// cancelAfter cancels a load's context after n rows finished (a kill).
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	done   int
}

func (c *cancelAfter) Start(int) {}
func (c *cancelAfter) Row(ops.Result, ops.Summary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done++
	if c.done == c.n {
		c.cancel()
	}
}

func TestEmulatorLoadSurvivesFaultsAndKill(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 2, FailRate: 0.1})
	before := len(e.customers(t))
	rows := readCSV(t, customersCSV(1000))
	opt := ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate, Concurrency: 8}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed := opt
	killed.Progress = &cancelAfter{n: 400, cancel: cancel}
	res, err := e.ops.Load(ctx, rows, killed)
	if err == nil {
		t.Fatalf("interrupted load: no error (%v)", res.Summary)
	}
	if res.Summary.Skipped == 0 {
		t.Fatalf("interrupted load skipped nothing: %v", res.Summary)
	}

	if e.emu.Stats().ServerErrors == 0 {
		t.Fatal("no 500s were injected")
	}
	res, err = e.ops.Load(context.Background(), rows, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.OK() || res.Summary.Created+res.Summary.Unchanged != 1000 {
		t.Fatalf("re-run: %v", res.Summary)
	}
	objs := e.customers(t)
	if got := len(objs) - before; got != 1000 {
		t.Fatalf("customers = %d, want exactly 1000", got)
	}
	ids := externalIDs(t, objs)
	for i := 1; i <= 1000; i++ {
		if n := ids[fmt.Sprintf("ext-%d", i)]; n != 1 {
			t.Fatalf("external id ext-%d appears %d times", i, n)
		}
	}
}

func TestEmulatorBadRowsNotSent(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 3})
	before := e.customers(t)
	rows := readCSV(t, "email,balance,metadata[external_id],tax_exempt\n"+
		"ok1@example.com,10,good-1,\n"+
		"bad1@example.com,ten,bad-1,\n"+
		"bad2@example.com,1,bad-2,sometimes\n"+
		"ok2@example.com,,good-2,none\n"+
		"bad3@example.com,,"+strings.Repeat("x", 501)+",\n")
	res, err := e.ops.Load(context.Background(), rows, ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate})
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid := map[int]string{2: "balance", 3: "tax_exempt", 5: "metadata[external_id]"}
	for _, r := range res.Results {
		if p, bad := wantInvalid[r.Row]; bad {
			if r.Status != ops.StatusInvalid || !strings.HasPrefix(r.Error, p+":") {
				t.Errorf("row %d = %+v, want invalid on %s", r.Row, r, p)
			}
		} else if r.Status != ops.StatusCreated {
			t.Errorf("row %d = %+v, want created", r.Row, r)
		}
	}
	after := e.customers(t)
	if got := len(after) - len(before); got != 2 {
		t.Errorf("customers created = %d, want 2", got)
	}
	ids := externalIDs(t, after)
	for _, bad := range []string{"bad-1", "bad-2"} {
		if ids[bad] != 0 {
			t.Errorf("invalid row %s reached the emulator", bad)
		}
	}
}

func TestEmulatorMetadataSetUnset(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 4})
	ctx := context.Background()
	obj, err := e.ops.Create(ctx, "customers", ops.Params{{"email", "ann@example.com"}, {"metadata[plan]", "pro"}, {"metadata[tier]", "1"}, {"address[city]", "Paris"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := e.customers(t)[obj.ID]
	if md := got["metadata"].(map[string]any); md["plan"] != "pro" || md["tier"] != "1" {
		t.Fatalf("metadata after create = %v", md)
	}
	p, err := ops.FlattenJSON([]byte(`{"metadata":{"plan":null,"tier":"2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.Update(ctx, "customers", obj.ID, p, ""); err != nil {
		t.Fatal(err)
	}
	got = e.customers(t)[obj.ID]
	md := got["metadata"].(map[string]any)
	if _, ok := md["plan"]; ok || md["tier"] != "2" {
		t.Fatalf("metadata after unset = %v", md)
	}
	raw, err := e.ops.Get(ctx, "customers", obj.ID, nil)
	if err != nil || !strings.Contains(string(raw), `"tier"`) {
		t.Fatalf("get: %s %v", raw, err)
	}
}

func TestEmulatorDryRunSendsNothing(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 5})
	before := len(e.customers(t))
	var plans int
	res, err := e.ops.Load(context.Background(), readCSV(t, customersCSV(50)), ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate, DryRun: true, Plan: func(ops.Plan) { plans++ }})
	if err != nil {
		t.Fatal(err)
	}
	if plans != 50 || res.Summary.Planned != 50 {
		t.Fatalf("plans = %d, summary = %v", plans, res.Summary)
	}
	if got := len(e.customers(t)); got != before {
		t.Fatalf("dry run changed the customers: %d → %d", before, got)
	}
	if st := e.client.Stats(); st.Requests != 0 {
		t.Errorf("dry run sent %d requests", st.Requests)
	}
}

func TestEmulatorUpsertByKeyViaSearch(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 6})
	ctx := context.Background()
	opt := ops.LoadOptions{Stream: "customers", Mode: ops.ModeUpsert, Key: "metadata[external_id]"}
	if _, err := e.ops.Load(ctx, readCSV(t, customersCSV(5)), opt); err != nil {
		t.Fatal(err)
	}
	res, err := e.ops.Load(ctx, readCSV(t, "email,name,metadata[external_id]\nc3@example.com,Renamed,ext-3\nc6@example.com,New,ext-6\n"), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Updated != 1 || res.Summary.Created != 1 {
		t.Fatalf("summary = %v (%+v)", res.Summary, res.Results)
	}
	objs := e.customers(t)
	if o := objs[res.Results[0].ID]; o["name"] != "Renamed" {
		t.Errorf("ext-3 after upsert = %v", o)
	}
	if n := externalIDs(t, objs)["ext-3"]; n != 1 {
		t.Errorf("ext-3 appears %d times", n)
	}
}

// TestEmulatorUpsertByKeyViaReplica matches rows through a SQLite replica
// (dest.Querier) instead of search.
func TestEmulatorUpsertByKeyViaReplica(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: 8})
	ctx := context.Background()
	res, err := e.ops.Load(ctx, readCSV(t, customersCSV(3)), ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate})
	if err != nil || res.Summary.Created != 3 {
		t.Fatalf("seed: %v %v", res.Summary, err)
	}
	d, err := dest.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	table := dest.Table{Name: "customers", Columns: []dest.Column{{Name: "id", Type: catalog.TypeString}, {Name: "email", Type: catalog.TypeString}, {Name: "metadata", Type: catalog.TypeJSON}}}
	if err := d.Migrate(ctx, table); err != nil {
		t.Fatal(err)
	}
	b := &dest.Batch{Table: table, SyncedAt: time.Now()}
	for _, r := range res.Results {
		var obj struct {
			Email    string          `json:"email"`
			Metadata json.RawMessage `json:"metadata"`
		}
		raw, err := e.ops.Get(ctx, "customers", r.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatal(err)
		}
		b.Rows = append(b.Rows, dest.Row{ID: r.ID, Values: []any{r.ID, obj.Email, obj.Metadata}, Raw: raw})
	}
	if err := d.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	finder, err := ops.NewReplicaFinder(d, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		ids, err := finder.Find(ctx, catalog.Stream{Name: "customers"}, []string{"metadata", "external_id"}, fmt.Sprintf("ext-%d", i))
		if err != nil || len(ids) != 1 || ids[0] != res.Results[i-1].ID {
			t.Fatalf("replica lookup ext-%d = %v, %v; want %s", i, ids, err, res.Results[i-1].ID)
		}
	}
	ids, err := finder.Find(ctx, catalog.Stream{Name: "customers"}, []string{"metadata", "external_id"}, "ext-404")
	if err != nil || len(ids) != 0 {
		t.Fatalf("lookup of a missing key = %v, %v", ids, err)
	}
}

// BenchmarkLoadCreate measures a 1,000-row create load against the emulator
// with no latency and no rate limit (the client's pacer set out of the way).
func BenchmarkLoadCreate(b *testing.B) {
	emu, err := emulator.New(emulator.Config{Seed: 9, Objects: 200, ConnectedAccounts: -1})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := stripe.New(stripe.Config{Key: "sk_test_bench", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	o := ops.New(c, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var sb strings.Builder
		sb.WriteString("email,metadata[external_id]\n")
		for j := 0; j < 1000; j++ {
			fmt.Fprintf(&sb, "b%d-%d@example.com,b%d-%d\n", i, j, i, j)
		}
		rows, err := ops.ReadRows(strings.NewReader(sb.String()), ops.FormatCSV, nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := o.Load(context.Background(), rows, ops.LoadOptions{Stream: "customers", Mode: ops.ModeCreate, Concurrency: 8})
		if err != nil || res.Summary.Created != 1000 {
			b.Fatalf("%v %v", res.Summary, err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}
