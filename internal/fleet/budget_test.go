package fleet

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// TestSharedBudgetCapsEveryWindowAcrossProcesses has two budgets (two
// processes' worth) on one PostgreSQL table take tokens as fast as they can;
// within each one-second window of the database's clock they are granted
// no more than the cap together.
func TestSharedBudgetCapsEveryWindowAcrossProcesses(t *testing.T) {
	base := os.Getenv("STRIPELINE_TEST_POSTGRES")
	if base == "" {
		t.Skip("STRIPELINE_TEST_POSTGRES is not set: the shared budget is not tested")
	}
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, BudgetDDL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), `DELETE FROM `+BudgetTable+` WHERE name = $1`, name)
	})
	const capRPS = 40
	one, two := NewShared(db, name, capRPS).(*Shared), NewShared(db, name, capRPS).(*Shared)
	var mu sync.Mutex
	granted := map[int64]int{}
	var wg sync.WaitGroup
	for _, bu := range []*Shared{one, two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused := 0
			// Until each has been refused twice: the window was spent.
			for refused < 2 {
				ok, _, err := bu.take(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					refused++
					continue
				}
				mu.Lock()
				granted[bu.win]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for win, n := range granted {
		total += n
		if n > capRPS {
			t.Errorf("window %d: %d requests granted, cap %d", win, n, capRPS)
		}
	}
	if total == 0 {
		t.Fatal("nothing granted")
	}
	var used int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(used), 0) FROM `+BudgetTable+` WHERE name = $1`, name).Scan(&used); err != nil || used > capRPS {
		t.Fatalf("stored count %d (cap %d), %v", used, capRPS, err)
	}
}
