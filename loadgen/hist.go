package loadgen

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// histogram counts durations in logarithmic buckets 1% wide, so that any
// quantile is known within 0.5% in a few kilobytes, however many samples
// it holds (the viewers scenario records one per viewer and vote). It is
// safe for concurrent use; the zero value is not: use newHistogram.
type histogram struct {
	counts   []atomic.Int64 // bucket 0: below histUnit; bucket b ≥ 1: [histUnit·g^(b-1), histUnit·g^b)
	total    atomic.Int64
	min, max atomic.Int64 // exact, in nanoseconds
}

const (
	histUnit    = int64(time.Microsecond) // lower bound of bucket 1; shorter durations count as zero
	histGrowth  = 1.01                    // each bucket is 1% wider than the one before
	histBuckets = 2600                    // up to histUnit·1.01^2599 ≈ 5 hours; longer ones share the last bucket
)

// bucketEnds[b] is the first duration past bucket b, in nanoseconds:
// bucket 0 is [0, histUnit), bucket b ≥ 1 is [bucketEnds[b-1], bucketEnds[b]).
// A table, because the viewers scenario places a sample for every viewer
// and vote: a logarithm and a power for each would dominate the load
// generator's CPU.
var bucketEnds = func() []int64 {
	ends := make([]int64, histBuckets)
	for b := range ends {
		ends[b] = int64(math.Ceil(float64(histUnit) * math.Pow(histGrowth, float64(b))))
	}
	ends[histBuckets-1] = math.MaxInt64
	return ends
}()

func newHistogram() *histogram {
	h := &histogram{counts: make([]atomic.Int64, histBuckets)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket of a duration of ns ≥ 0 nanoseconds.
func bucketOf(ns int64) int {
	b, _ := slices.BinarySearch(bucketEnds, ns+1) // the first end past ns
	return b
}

// Record counts one duration; negative ones count as zero.
func (h *histogram) Record(d time.Duration) {
	ns := max(int64(d), 0)
	h.counts[bucketOf(ns)].Add(1)
	h.note(1, ns, ns)
}

// RecordSince counts, for each time t in ts (ascending, in nanoseconds on
// the same clock as now), the duration now−t, clamped at zero. It walks
// the samples from the shortest duration and the buckets upwards together:
// one comparison per sample and per bucket crossed, one atomic addition
// per bucket holding samples.
func (h *histogram) RecordSince(now int64, ts []int64) {
	if len(ts) == 0 {
		return
	}
	b := bucketOf(max(now-ts[len(ts)-1], 0))
	for i := len(ts) - 1; i >= 0; {
		end := bucketEnds[b]
		j := i - 1
		for j >= 0 && now-ts[j] < end {
			j--
		}
		h.counts[b].Add(int64(i - j))
		if i = j; i >= 0 {
			for d := now - ts[i]; d >= bucketEnds[b]; {
				b++ // the last bucket ends at MaxInt64: this stops
			}
		}
	}
	h.note(int64(len(ts)), max(now-ts[len(ts)-1], 0), max(now-ts[0], 0))
}

// add counts n samples in bucket b, the shortest lo and the longest hi.
func (h *histogram) add(b int, n, lo, hi int64) {
	h.counts[b].Add(n)
	h.note(n, lo, hi)
}

// note adds n samples to the total, with the shortest lo and the longest hi.
func (h *histogram) note(n, lo, hi int64) {
	h.total.Add(n)
	for cur := h.max.Load(); hi > cur && !h.max.CompareAndSwap(cur, hi); cur = h.max.Load() {
	}
	for cur := h.min.Load(); lo < cur && !h.min.CompareAndSwap(cur, lo); cur = h.min.Load() {
	}
}

// Count returns the number of samples.
func (h *histogram) Count() int64 { return h.total.Load() }

// Max returns the longest sample, 0 without samples.
func (h *histogram) Max() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.max.Load())
}

// Quantile returns the duration below which a fraction q (0 to 1) of the
// samples fall: the middle of its bucket, within the exact minimum and
// maximum. It returns 0 without samples.
func (h *histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(q*float64(total))), 1)
	var seen int64
	b := 0
	for ; b < histBuckets-1; b++ {
		if seen += h.counts[b].Load(); seen >= rank {
			break
		}
	}
	if b == 0 {
		return 0
	}
	mid := int64(float64(histUnit) * math.Pow(histGrowth, float64(b)-0.5))
	return time.Duration(min(max(mid, h.min.Load()), h.max.Load()))
}
