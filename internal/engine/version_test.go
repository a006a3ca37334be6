package engine

import (
	"testing"
	"time"
)

// Versions order a second's events created < updated < deleted, every
// event after the seconds before, and a list read below every event of the
// cursor's second and above every earlier one.
func TestVersionsOrder(t *testing.T) {
	const sec = 1_800_000_000
	order := []int64{
		EventVersion(sec-1, "customer.deleted"),
		ReadVersion(time.Unix(sec, 0)),
		EventVersion(sec, "customer.created"),
		EventVersion(sec, "customer.updated"),
		EventVersion(sec, "customer.subscription.trial_will_end"),
		EventVersion(sec, "customer.deleted"),
		EventVersion(sec+1, "customer.created"),
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] || (i != 4 && order[i] == order[i-1]) {
			t.Errorf("version %d (%d) is not after %d (%d)", i, order[i], i-1, order[i-1])
		}
	}
	up := EventVersion(sec, "customer.updated")
	cases := []struct {
		stored int64
		want   bool
	}{
		{up, true},      // a second update of that second
		{up + 3, true},  // a refetch of that second stored
		{up - 1, false}, // older
		{EventVersion(sec, "customer.deleted"), false},   // newer rank
		{EventVersion(sec+1, "customer.created"), false}, // a later second
		{ReadVersion(time.Unix(sec, 0)), false},
	}
	for _, c := range cases {
		if got := sameSlot(c.stored, up); got != c.want {
			t.Errorf("sameSlot(%d, %d) = %v, want %v", c.stored, up, got, c.want)
		}
	}
}
