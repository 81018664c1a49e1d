package bot

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// Ensure a spooled export read to the end (an upload that failed) reads
// the same again from the start after a rewind, and refuses any other
// seek.
func TestSealedSpoolRewinds(t *testing.T) {
	s, err := newSealedSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []byte(strings.Repeat("kept words ", 3*spoolChunk/11))
	if _, err := s.Write(want); err != nil {
		t.Fatal(err)
	}
	_, r, err := s.finish()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: read %d bytes of %d, %v", round, len(got), len(want), err)
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Seek(5, io.SeekStart); err == nil {
		t.Error("a seek elsewhere than the start was accepted")
	}
}
