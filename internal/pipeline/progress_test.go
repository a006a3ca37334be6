package pipeline

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProgressBoardKeepsEachStreamInOrder(t *testing.T) {
	var b progressBoard
	h := newHub()
	news, unsubscribe := h.subscribe(7)
	defer unsubscribe()
	p := b.start(7, h)
	p.Start("customers")
	<-news // a stream's start is news for followers
	p.Rows("customers", 100, 1)
	p.Start("invoices")
	p.Rows("customers", 250, 3)
	p.Done("customers", nil)
	p.Done("invoices", errors.New("stripe: permission denied"))
	s := &Service{}
	s.progress.runs = b.runs
	want := []StreamProgress{
		{Stream: "customers", Rows: 250, Pages: 3, Done: true},
		{Stream: "invoices", Done: true, Error: "stripe: permission denied"},
	}
	if diff := cmp.Diff(want, s.Progress(7)); diff != "" {
		t.Fatalf("progress (-want +got):\n%s", diff)
	}
	if s.Progress(8) != nil {
		t.Fatal("progress of a run not worked here")
	}
	b.end(7)
	if b.get(7) != nil {
		t.Fatal("an ended run keeps its progress")
	}
}
