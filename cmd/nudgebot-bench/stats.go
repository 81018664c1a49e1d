package main

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// summary is the distribution of a set of durations.
type summary struct {
	N                  int
	Min, P50, P90, P99 time.Duration
	Max, Mean          time.Duration
}

// summarize sorts ds in place and takes nearest-rank percentiles: p99 of
// 100 values is the 99th smallest, a value that was really observed.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	slices.Sort(ds)
	var total time.Duration
	for _, d := range ds {
		total += d
	}
	return summary{
		N:    len(ds),
		Min:  ds[0],
		P50:  percentile(ds, 50),
		P90:  percentile(ds, 90),
		P99:  percentile(ds, 99),
		Max:  ds[len(ds)-1],
		Mean: total / time.Duration(len(ds)),
	}
}

// percentile is the nearest-rank p-th percentile of sorted, non-empty ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms formats a duration in milliseconds with enough digits for sub-ms acks.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}

// verdict is how a figure compares with its target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
