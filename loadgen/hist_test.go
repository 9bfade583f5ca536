package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistogram checks quantiles against a known distribution: the
// durations 1 µs·1.0001^i spread over nine orders of magnitude, and a
// uniform one.
func TestHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	uniform := make([]time.Duration, 200_000)
	for i := range uniform {
		uniform[i] = time.Millisecond + time.Duration(rng.Int64N(int64(99*time.Millisecond)))
	}
	wide := make([]time.Duration, 200_000)
	for i := range wide {
		wide[i] = time.Duration(float64(time.Microsecond) * math.Pow(1.0001, float64(i)))
	}
	for name, samples := range map[string][]time.Duration{"uniform": uniform, "wide": wide} {
		t.Run(name, func(t *testing.T) {
			h := newHistogram()
			for _, d := range samples {
				h.Record(d)
			}
			sorted := slices.Sorted(slices.Values(samples))
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				exact := sorted[int(math.Ceil(q*float64(len(sorted))))-1]
				got := h.Quantile(q)
				if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
					t.Errorf("q%v = %v, exact %v (off by %.2f%%)", q, got, exact, rel*100)
				}
			}
			if h.Max() != sorted[len(sorted)-1] || h.Count() != int64(len(samples)) {
				t.Errorf("max %v count %d, want %v and %d", h.Max(), h.Count(), sorted[len(sorted)-1], len(samples))
			}
		})
	}
	t.Run("empty and zero", func(t *testing.T) {
		h := newHistogram()
		if h.Quantile(0.5) != 0 || h.Max() != 0 {
			t.Errorf("empty: %v %v", h.Quantile(0.5), h.Max())
		}
		h.Record(-time.Second)
		h.Record(0)
		h.Record(time.Second)
		if h.Quantile(0.5) != 0 || h.Quantile(1) != time.Second {
			t.Errorf("p50 %v p100 %v", h.Quantile(0.5), h.Quantile(1))
		}
	})
}

// TestHistogramRecordSince checks that RecordSince counts as Record would.
func TestHistogramRecordSince(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ts := make([]int64, 50_000)
	for i := range ts {
		ts[i] = rng.Int64N(int64(2 * time.Second))
	}
	slices.Sort(ts)
	now := int64(time.Second) // later times clamp at zero
	bulk, one := newHistogram(), newHistogram()
	record := func(what string, ts []int64) {
		t.Helper()
		bulk.RecordSince(now, ts)
		for _, t0 := range ts {
			one.Record(time.Duration(now - t0))
		}
		for b := range histBuckets {
			if bulk.counts[b].Load() != one.counts[b].Load() {
				t.Fatalf("%s: bucket %d: %d by RecordSince, %d by Record", what, b, bulk.counts[b].Load(), one.counts[b].Load())
			}
		}
	}
	record("random", ts)
	// Durations on the edges of buckets.
	var edges []int64
	for _, d := range append([]int64{0, 1, histUnit - 1, histUnit, histUnit + 1}, bucketEnds[1:10]...) {
		edges = append(edges, now-d, now-d-1, now-d+1)
	}
	record("edges", slices.Compact(slices.Sorted(slices.Values(edges))))
	if bulk.Count() != one.Count() || bulk.Max() != one.Max() {
		t.Errorf("count %d max %v, want %d %v", bulk.Count(), bulk.Max(), one.Count(), one.Max())
	}
}

// BenchmarkHistogramRecordSince is what a viewer's results message costs
// the load generator at 5,000 votes/s and one message per 200 ms: a
// thousand samples spread over 200 ms.
func BenchmarkHistogramRecordSince(b *testing.B) {
	ts := make([]int64, 1000)
	for i := range ts {
		ts[i] = int64(i) * int64(200*time.Microsecond)
	}
	now := ts[len(ts)-1] + int64(5*time.Millisecond)
	h := newHistogram()
	for b.Loop() {
		h.RecordSince(now, ts)
	}
}
