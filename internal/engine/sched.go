package engine

import "sync"

// item is one unit of listing work: a created range of a sliced job, or the
// whole of a sequential job. Only one worker holds an item at a time.
type item struct {
	job   *job
	id    int
	lo    int64 // created[gte]
	hi    int64 // created[lt]; openEnded until the first page
	after string
	busy  bool
	done  bool
	// read and span estimate the item's density for splitting.
	read    int64
	covered int64
	// pages counts the item's pages read; an item is split only after its
	// own first page, so splits of splits do not cascade over ranges the
	// density seen elsewhere says nothing about (an account's empty years).
	pages int
	// last is set once the item's final page is in hand, before the item
	// is released: splitting it then would re-read what that page held.
	last bool
}

// sched hands items to workers, fairly across jobs, and splits the busiest
// range when a worker would otherwise sit idle (dynamic work splitting).
type sched struct {
	mu       sync.Mutex
	cond     *sync.Cond
	items    []*item
	inflight map[*job]int
	// onPath counts requests in flight per list endpoint: the jobs of one
	// list (one per test clock) share its endpoint's rate, and a worker
	// handed more of them than that rate serves would only wait in the
	// client's pacer while other endpoints sit idle.
	onPath  map[string]int
	left    map[*job]int // items not done, per job
	nextID  map[*job]int
	failed  map[*job]bool
	perJob  int
	stopped bool
	// workers is the number of workers; sliced counts the requests of
	// sliced jobs in flight. While a sequential list is still being read,
	// sliced work keeps a fifth of the workers free: requests beyond what
	// the rate can serve only queue in the client's pacer, where the
	// sequential list, which sets the run's length, would wait behind them.
	workers int
	sliced  int
	// origin is when the account was created: no object is older, so the
	// part of a range before it holds nothing and is not worth splitting.
	origin int64
	// now and total measure progress: the seconds of created range each
	// stream had to read when the backfill began (from origin to now).
	now   int64
	total map[string]int64
}

func newSched(perJob, workers int) *sched {
	s := &sched{inflight: map[*job]int{}, onPath: map[string]int{}, left: map[*job]int{}, nextID: map[*job]int{}, failed: map[*job]bool{}, perJob: perJob, workers: workers}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// slicedRoom reports whether another sliced request may start.
func (s *sched) slicedRoom() bool {
	limit := s.workers
	for _, it := range s.items {
		if !it.job.sliced && !it.done && !s.failed[it.job] {
			limit = s.workers - max(1, s.workers/5)
			break
		}
	}
	return s.sliced < limit
}

func (s *sched) add(it *item) {
	if it.job.sliced {
		if s.total == nil {
			s.total = map[string]int64{}
		}
		s.total[it.job.stream] += s.width(it)
	}
	s.items = append(s.items, it)
	s.left[it.job]++
	if it.id >= s.nextID[it.job] {
		s.nextID[it.job] = it.id + 1
	}
}

// take returns an item to work on, a split to record (or nil), and false
// when no work is left.
func (s *sched) take() (*item, *span, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.stopped {
			return nil, nil, false
		}
		var best *item
		room := s.slicedRoom()
		for _, it := range s.items {
			if it.busy || it.done || s.failed[it.job] || s.inflight[it.job] >= s.perJob || s.onPath[it.job.source.Path] >= s.perJob || (it.job.sliced && !room) {
				continue
			}
			if best == nil || s.better(it, best, s.inflight) {
				best = it
			}
		}
		if best != nil {
			best.busy = true
			s.inflight[best.job]++
			s.onPath[best.job.source.Path]++
			if best.job.sliced {
				s.sliced++
			}
			return best, nil, true
		}
		if room {
			if it, sp := s.split(); it != nil {
				s.sliced++
				return it, sp, true
			}
		}
		if s.remaining() == 0 {
			return nil, nil, false
		}
		s.cond.Wait()
	}
}

// better orders free items: a list with per-parent children first (each of
// its pages feeds many requests to other endpoints, which should start
// early), then a list without a created filter (it can only be read one
// page after another, so it sets the run's length), then the job with the
// fewest requests in flight (fairness across streams), then the most
// estimated work.
func (s *sched) better(a, b *item, inflight map[*job]int) bool {
	if ac, bc := len(a.job.children) > 0, len(b.job.children) > 0; ac != bc {
		return ac
	}
	if a.job.sliced != b.job.sliced {
		return !a.job.sliced
	}
	if inflight[a.job] != inflight[b.job] {
		return inflight[a.job] < inflight[b.job]
	}
	return s.estimate(a) > s.estimate(b)
}

// split carves the lower half off the busy range with the most estimated
// work left. The worker holding it learns of its new lower bound when it
// returns (it drops objects below it).
func (s *sched) split() (*item, *span) {
	var best *item
	for _, it := range s.items {
		if !it.busy || it.done || !it.job.sliced || it.hi == openEnded || it.hi-it.lo < 2 || it.pages == 0 || it.last ||
			s.failed[it.job] || s.inflight[it.job] >= s.perJob || s.onPath[it.job.source.Path] >= s.perJob {
			continue
		}
		if best == nil || s.estimate(it) > s.estimate(best) {
			best = it
		}
	}
	// Each half should hold at least a full page, or the split only adds
	// requests.
	if best == nil || s.estimate(best) < 2*pageSize {
		return nil, nil
	}
	lo := max(best.lo, s.origin)
	mid := lo + (best.hi-lo)/2
	n := &item{job: best.job, id: s.nextID[best.job], lo: best.lo, hi: mid, busy: true, read: best.read / 2, covered: best.covered / 2}
	s.nextID[best.job]++
	best.lo = mid
	s.items = append(s.items, n)
	s.left[n.job]++
	s.inflight[n.job]++
	s.onPath[n.job.source.Path]++
	return n, &span{ID: n.id, Lo: n.lo, Hi: n.hi}
}

// estimate guesses the objects left in an item from the density seen so
// far, counting only the part of its range after the account's creation.
func (s *sched) estimate(it *item) float64 {
	if it.hi == openEnded {
		return 1e12
	}
	width := float64(it.hi - max(it.lo, s.origin))
	if width <= 0 {
		return 0
	}
	if it.covered <= 0 || it.read == 0 {
		return width / 3600 // unknown density: one object an hour
	}
	return width * float64(it.read) / float64(it.covered)
}

// width is the part of an item's created range between the account's
// creation and the start of the backfill, in seconds.
func (s *sched) width(it *item) int64 {
	hi := it.hi
	if hi == openEnded || hi > s.now {
		hi = s.now
	}
	return max(0, hi-max(it.lo, s.origin))
}

// covered returns the share of a stream's created range read so far.
func (s *sched) covered(stream string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.total[stream]
	if total <= 0 {
		return 0
	}
	var left int64
	for _, it := range s.items {
		if it.job.stream == stream && !it.done {
			left += s.width(it)
		}
	}
	return min(1, max(0, 1-float64(left)/float64(total)))
}

// pageSize is the limit of every list request.
const pageSize = 100

func (s *sched) remaining() int {
	n := 0
	for j, l := range s.left {
		if !s.failed[j] {
			n += l
		}
	}
	return n
}

// release returns an item; it reports whether its job has no work left.
func (s *sched) release(it *item, done bool) (jobDone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it.busy = false
	s.inflight[it.job]--
	s.onPath[it.job.source.Path]--
	if it.job.sliced {
		s.sliced--
	}
	if done && !it.done {
		it.done = true
		s.left[it.job]--
	}
	s.compact()
	s.cond.Broadcast()
	return s.left[it.job] == 0 && !s.failed[it.job]
}

func (s *sched) fail(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[j] = true
	s.cond.Broadcast()
}

func (s *sched) stop() {
	s.mu.Lock()
	s.stopped = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *sched) compact() {
	out := s.items[:0]
	for _, it := range s.items {
		if !it.done {
			out = append(out, it)
		}
	}
	s.items = out
}
