package backup_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripeline/stripeline/internal/backup"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/emulator"
	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/ops"
	"github.com/stripeline/stripeline/internal/stripe"
)

var restoreStreams = []string{"customers", "products", "prices", "coupons"}

// liveFixture is an emulator behind a server that counts the writes it
// receives, with a replica synced from it.
type liveFixture struct {
	emu    *emulator.Emulator
	client *stripe.Client
	ops    *ops.Ops
	posts  atomic.Int64
	dst    dest.Destination
}

func newLiveFixture(t *testing.T) *liveFixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{Seed: 23, Objects: 150, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	f := &liveFixture{emu: emu}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodDelete {
			f.posts.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	if f.client, err = stripe.New(stripe.Config{Key: "sk_test_restore", APIBase: srv.URL, GlobalRPS: 1e6, EndpointRPS: 1e6}); err != nil {
		t.Fatal(err)
	}
	f.ops = ops.New(f.client, nil)
	if f.dst, err = dest.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "replica.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dst.Close() })
	if _, err := engine.Sync(context.Background(), engine.Options{Client: f.client, Dest: f.dst, Pipeline: "main", Streams: restoreStreams}); err != nil {
		t.Fatal(err)
	}
	return f
}

// ids lists the live ids of a stream, sorted.
func (f *liveFixture) ids(t *testing.T, stream string) []string {
	t.Helper()
	var out []string
	for _, raw := range f.emu.Objects("", stream) {
		var o struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &o)
		out = append(out, o.ID)
	}
	sort.Strings(out)
	return out
}

func (f *liveFixture) update(t *testing.T, stream, id string, p ...string) {
	t.Helper()
	var ps ops.Params
	for i := 0; i < len(p); i += 2 {
		ps = append(ps, ops.Param{Key: p[i], Value: p[i+1]})
	}
	if _, err := f.ops.Update(context.Background(), stream, id, ps, ""); err != nil {
		t.Fatal(err)
	}
}

func (f *liveFixture) delete(t *testing.T, stream, id string) {
	t.Helper()
	if _, err := f.ops.Delete(context.Background(), stream, id); err != nil {
		t.Fatal(err)
	}
}

// change is one expected line of a diff: stream, id, change, field.
type change struct{ stream, id, kind, field string }

func changes(r *backup.DiffResult) []change {
	var out []change
	for _, s := range r.Streams {
		for _, o := range s.Objects {
			if len(o.Fields) == 0 {
				out = append(out, change{s.Stream, o.ID, o.Change, ""})
			}
			for _, fd := range o.Fields {
				out = append(out, change{s.Stream, o.ID, o.Change, fd.Field})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.stream+a.id+a.field < b.stream+b.id+b.field
	})
	return out
}

func (f *liveFixture) diffLive(t *testing.T, snap *backup.Snapshot) *backup.DiffResult {
	t.Helper()
	r, err := backup.Diff(context.Background(), backup.SnapshotSource{S: snap}, backup.LiveSource{Client: f.client}, backup.DiffOptions{Streams: restoreStreams})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRestoreToStripe: a backup, then updates (metadata added, changed
// and removed, plain fields) and deletes on the account; the diff against
// the live account lists exactly those changes; a restore puts them back,
// after which the diff shows no field a restore can revert, and a second
// restore sends no writes at all.
func TestRestoreToStripe(t *testing.T) {
	t.Parallel()
	f := newLiveFixture(t)
	snap, err := backup.Create(context.Background(), backup.CreateOptions{Source: f.dst, SourceURL: "sqlite://replica.db", Pipeline: "main", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if d := f.diffLive(t, snap); !d.Empty() {
		t.Fatalf("fresh snapshot differs from the account: %v", changes(d))
	}

	cus, prods, prices, coupons := f.ids(t, "customers"), f.ids(t, "products"), f.ids(t, "prices"), f.ids(t, "coupons")
	if len(cus) < 4 || len(prods) < 2 || len(prices) < 1 || len(coupons) < 2 {
		t.Fatalf("seeded too few objects: %d customers, %d products, %d prices, %d coupons", len(cus), len(prods), len(prices), len(coupons))
	}
	// customers[0]: a metadata key added, plain fields changed.
	f.update(t, "customers", cus[0], "metadata[added_since]", "x", "name", "Changed Name", "email", "changed@example.com")
	// customers[1]: the description unset, a metadata key set then removed
	// again (no change), and one more added.
	f.update(t, "customers", cus[1], "description", "", "metadata[tier]", "gold")
	// products[0]: renamed; prices[0]: archived with new metadata.
	f.update(t, "products", prods[0], "name", "Renamed product")
	f.update(t, "prices", prices[0], "active", "false", "metadata[note]", "archived")
	// Deletes: two customers and a coupon.
	f.delete(t, "customers", cus[2])
	f.delete(t, "customers", cus[3])
	f.delete(t, "coupons", coupons[0])

	snapRow := func(stream, id string) map[string]any {
		for row, err := range snap.Rows(context.Background(), stream) {
			if err != nil {
				t.Fatal(err)
			}
			if row["id"] == id {
				return row
			}
		}
		t.Fatalf("%s %s not in the snapshot", stream, id)
		return nil
	}
	want := []change{
		{"coupons", coupons[0], backup.Removed, ""},
		{"customers", cus[0], backup.Changed, "email"},
		{"customers", cus[0], backup.Changed, "metadata.added_since"},
		{"customers", cus[0], backup.Changed, "name"},
		{"customers", cus[2], backup.Removed, ""},
		{"customers", cus[3], backup.Removed, ""},
		{"prices", prices[0], backup.Changed, "active"},
		{"prices", prices[0], backup.Changed, "metadata.note"},
		{"products", prods[0], backup.Changed, "name"},
	}
	if snapRow("customers", cus[1])["description"] != nil {
		want = append(want, change{"customers", cus[1], backup.Changed, "description"})
	}
	var md map[string]string
	_ = json.Unmarshal(snapRow("customers", cus[1])["metadata"].(json.RawMessage), &md)
	if md["tier"] != "gold" {
		want = append(want, change{"customers", cus[1], backup.Changed, "metadata.tier"})
	}
	sort.Slice(want, func(i, j int) bool {
		a, b := want[i], want[j]
		return a.stream+a.id+a.field < b.stream+b.id+b.field
	})
	got := changes(f.diffLive(t, snap))
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(change{})); diff != "" {
		t.Fatalf("diff snapshot → live (-want +got):\n%s", diff)
	}

	// A dry run plans and sends nothing.
	f.posts.Store(0)
	dry, err := snap.RestoreToStripe(context.Background(), backup.StripeOptions{Lister: f.client, Streams: restoreStreams, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.posts.Load() != 0 || dry.Summary.Planned != 7 {
		t.Fatalf("dry run: %d writes sent, %+v", f.posts.Load(), dry.Summary)
	}

	res, err := snap.RestoreToStripe(context.Background(), backup.StripeOptions{Ops: f.ops, Lister: f.client, Streams: restoreStreams})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Summary.OK() || res.Summary.Created != 3 || res.Summary.Updated != 4 {
		for _, a := range res.Actions {
			t.Logf("%+v", a)
		}
		t.Fatalf("restore: %+v", res.Summary)
	}
	for _, old := range []string{cus[2], cus[3], coupons[0]} {
		nu := res.Mapping[old]
		if nu == "" || nu == old {
			t.Fatalf("no new id for %s: %v", old, res.Mapping)
		}
	}
	// The re-created objects carry the mark, exactly once each.
	marks := map[string]int{}
	for _, stream := range []string{"customers", "coupons"} {
		for _, raw := range f.emu.Objects("", stream) {
			var o struct {
				Metadata map[string]string `json:"metadata"`
			}
			_ = json.Unmarshal(raw, &o)
			if m := o.Metadata[backup.RestoredFromKey]; m != "" {
				marks[m]++
			}
		}
	}
	if want := map[string]int{cus[2]: 1, cus[3]: 1, coupons[0]: 1}; !cmp.Equal(marks, want) {
		t.Fatalf("restored-from marks %v, want %v", marks, want)
	}

	after := f.diffLive(t, snap)
	for _, s := range after.Streams {
		if s.Added+s.Removed > 0 {
			t.Errorf("%s after the restore: %d added, %d removed", s.Stream, s.Added, s.Removed)
		}
		for _, o := range s.Objects {
			for _, fd := range o.Fields {
				if fd.Updatable {
					t.Errorf("%s %s after the restore: updatable field %s still differs: %s → %s", s.Stream, o.ID, fd.Field, fd.A, fd.B)
				}
			}
			if o.Change == backup.Changed && o.RestoredAs == "" {
				t.Errorf("%s %s differs after the restore: %+v", s.Stream, o.ID, o.Fields)
			}
		}
	}

	f.posts.Store(0)
	again, err := snap.RestoreToStripe(context.Background(), backup.StripeOptions{Ops: f.ops, Lister: f.client, Streams: restoreStreams})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.posts.Load(); n != 0 || len(again.Actions) != 0 {
		t.Fatalf("second restore sent %d writes: %+v", n, again.Actions)
	}
	for _, a := range res.Actions {
		if a.Action == backup.ActionCreate && !strings.Contains(strings.Join(a.Fields, " "), "metadata."+backup.RestoredFromKey) {
			t.Errorf("create of %s does not set the mark: %v", a.ID, a.Fields)
		}
	}
}
