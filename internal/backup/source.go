package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"

	"github.com/tidwall/gjson"

	"github.com/stripeline/stripeline/internal/catalog"
	"github.com/stripeline/stripeline/internal/dest"
	"github.com/stripeline/stripeline/internal/engine"
)

// Source is one side of a diff: a snapshot, a replica or the live account.
type Source interface {
	// Label names the source in results ("snapshot …", a redacted URL,
	// "stripe").
	Label() string
	// Streams lists the streams the source holds; nil for the live
	// account, which holds every listable stream.
	Streams(ctx context.Context) ([]string, error)
	// Rows streams the rows of one stream, values of dest.Reader's types.
	// A field the source does not have (an includable field the live list
	// leaves out) is absent from the map, not nil.
	Rows(ctx context.Context, stream string) iter.Seq2[map[string]any, error]
	// Rereadable is false when reading a stream twice costs requests.
	Rereadable() bool
}

// SnapshotSource is a snapshot as a diff side.
type SnapshotSource struct{ S *Snapshot }

func (s SnapshotSource) Label() string { return "snapshot " + s.S.Manifest.ID }

func (s SnapshotSource) Streams(context.Context) ([]string, error) { return s.S.Streams(), nil }

func (s SnapshotSource) Rows(ctx context.Context, stream string) iter.Seq2[map[string]any, error] {
	return s.S.Rows(ctx, stream)
}

func (s SnapshotSource) Rereadable() bool { return true }

// ReplicaSource is a replica (any destination that reads back) as a diff
// side.
type ReplicaSource struct {
	R   dest.Reader
	URL string
}

func (r ReplicaSource) Label() string { return dest.Redact(r.URL) }

func (r ReplicaSource) Streams(ctx context.Context) ([]string, error) { return r.R.Tables(ctx) }

func (r ReplicaSource) Rows(ctx context.Context, stream string) iter.Seq2[map[string]any, error] {
	return r.R.Rows(ctx, stream)
}

func (r ReplicaSource) Rereadable() bool { return true }

// Lister is what the live source needs of the Stripe client
// (*stripe.Client): every object of a list, paged.
type Lister interface {
	Each(ctx context.Context, path string, q url.Values, fn func(obj json.RawMessage) error) error
}

// LiveSource is the live account, listed through the Stripe client: its
// objects are converted to rows exactly as a sync converts them.
type LiveSource struct{ Client Lister }

func (LiveSource) Label() string { return "stripe" }

func (LiveSource) Streams(context.Context) ([]string, error) { return nil, nil }

func (LiveSource) Rereadable() bool { return false }

// ErrNotListable is returned for streams the live account cannot list on
// their own (children of another stream, lists that need a parameter).
var ErrNotListable = errors.New("cannot be listed from the live account on its own")

// Listable reports whether a stream can be read from the live account.
func Listable(stream string) bool {
	s, ok := catalog.Lookup(stream)
	return ok && s.Parent == "" && len(s.RequiredParams) == 0
}

func (l LiveSource) Rows(ctx context.Context, stream string) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		s, ok := catalog.Lookup(stream)
		if !ok || !Listable(stream) {
			yield(nil, fmt.Errorf("stream %s %w", stream, ErrNotListable))
			return
		}
		conv := engine.NewConverter(s, nil)
		cols := conv.Columns()
		q := url.Values{}
		for k, v := range s.ListParams {
			q.Set(k, v)
		}
		stop := errors.New("stop")
		// Objects under test clocks are left out of plain lists: one more
		// list per clock, as a sync reads them.
		queries := []url.Values{q}
		if s.TestClock {
			err := l.Client.Each(ctx, "/v1/test_helpers/test_clocks", url.Values{}, func(obj json.RawMessage) error {
				if id := gjson.GetBytes(obj, "id").Str; id != "" {
					cq := url.Values{}
					for k, v := range q {
						cq[k] = v
					}
					cq.Set("test_clock", id)
					queries = append(queries, cq)
				}
				return nil
			})
			if err != nil {
				yield(nil, fmt.Errorf("list test clocks: %w", err))
				return
			}
		}
		each := func(fn func(obj json.RawMessage) error) error {
			for _, q := range queries {
				if err := l.Client.Each(ctx, s.Path, q, fn); err != nil {
					return err
				}
			}
			return nil
		}
		err := each(func(obj json.RawMessage) error {
			row, err := conv.Row(obj, "")
			if err != nil {
				return err
			}
			present := map[string]bool{}
			gjson.ParseBytes(obj).ForEach(func(k, _ gjson.Result) bool {
				present[k.Str] = true
				return true
			})
			m := make(map[string]any, len(cols))
			for i, c := range cols {
				if present[c.Name] {
					v := row.Values[i]
					if raw, ok := v.(json.RawMessage); ok {
						v = json.RawMessage(append([]byte(nil), raw...))
					}
					m[c.Name] = v
				}
			}
			if !yield(m, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(nil, fmt.Errorf("list %s: %w", stream, err))
		}
	}
}
