package emulator

import (
	"runtime"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go under -race, where a 1M-object heap
// would take several times its memory.
var raceEnabled bool

// TestGenerate1M builds a one-million-object account and reports the time
// and the live heap it takes. It makes no timing assertion.
func TestGenerate1M(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1M-object generation skipped in -short mode and under the race detector")
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	begin := time.Now()
	e, err := New(Config{Seed: 1, Objects: 1_000_000, ConnectedAccounts: -1})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	total := 0
	for _, n := range e.Counts("") {
		total += n
	}
	if total < 900_000 {
		t.Fatalf("only %d objects", total)
	}
	t.Logf("generated %d objects in %v; live heap %.0f MB (%.0f bytes/object)", total, took.Round(time.Millisecond),
		float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), float64(after.HeapAlloc-before.HeapAlloc)/float64(total))
	runtime.KeepAlive(e)
}

func BenchmarkGenerate1M(b *testing.B) {
	for b.Loop() {
		e, err := New(Config{Seed: 1, Objects: 1_000_000, ConnectedAccounts: -1})
		if err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(e)
	}
}

func BenchmarkListPage(b *testing.B) {
	e, err := New(Config{Seed: 1, Objects: 100_000, ConnectedAccounts: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r := call(e, "GET", "/v1/charges?limit=100&created[gte]=1", nil)
		if r.code != 200 {
			b.Fatal(r.code)
		}
	}
}
