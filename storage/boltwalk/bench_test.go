package boltwalk

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkFile walks the file NUDGEBOT_WALK_FILE names (the start-up
// bench's 1 GB file, kept with `nudgebot-bench -scenarios startup -keep`)
// as Open does before bbolt maps it, and reports its size. B/op is the
// walk's memory: bitmaps and page buffers.
func BenchmarkFile(b *testing.B) {
	path := os.Getenv("NUDGEBOT_WALK_FILE")
	if path == "" {
		b.Skip("set NUDGEBOT_WALK_FILE to a bbolt file")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := File(f, info.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSample walks the sample file in memory.
func BenchmarkSample(b *testing.B) {
	s := newSampleFile(b)
	b.SetBytes(int64(len(s.data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := run(bytes.NewReader(s.data), s.meta, nil); err != nil {
			b.Fatal(err)
		}
	}
}
