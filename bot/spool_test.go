package bot

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// Ensure a sealed spool gives back exactly what was written, across
// chunk boundaries, while the file itself holds none of it in plaintext,
// and refuses a file changed underneath it.
func TestSealedSpool(t *testing.T) {
	for _, size := range []int{0, 1, spoolChunk - 1, spoolChunk, 3*spoolChunk + 17} {
		s, err := newSealedSpool()
		if err != nil {
			t.Fatal(err)
		}
		want := []byte(strings.Repeat("secret reflection ", size/18+1)[:size])
		// Written in uneven pieces, as the exporter does.
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 1000+len(rest)%777)
			if _, err := s.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		n, r, err := s.finish()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(s.f)
		if err != nil {
			t.Fatal(err)
		}
		if size > 0 && bytes.Contains(raw, []byte("secret")) {
			t.Errorf("%d bytes: the spool file holds plaintext", size)
		}
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || int64(len(got)) != n || !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read back %d (size %d), %v", size, len(got), n, err)
		}
		if size > 0 {
			if _, err := s.f.WriteAt([]byte{raw[10] ^ 1}, 10); err != nil {
				t.Fatal(err)
			}
			_, r, _ := s.finish()
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%d bytes: a changed spool file was read without error", size)
			}
		}
		_ = s.Close()
	}
}
