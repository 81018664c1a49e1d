package bot

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// sealedSpool is a temporary file that keeps what is written to it
// sealed with AES-256-GCM under a key that lives only in memory. An
// export is spooled to disk so that ten thousand reflections never sit
// in memory at once, yet not a word of them can be read there: not while
// the upload waits, not from the disk after a crash, not by whoever can
// read the temporary directory.
type sealedSpool struct {
	f    *os.File
	aead cipher.AEAD
	buf  []byte // plaintext not sealed yet
	size int64  // plaintext bytes written
	seq  uint64 // chunks sealed, each chunk's nonce
}

// spoolChunk is how much plaintext one sealed chunk holds.
const spoolChunk = 32 << 10

func newSealedSpool() (*sealedSpool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	f, err := spool()
	if err != nil {
		return nil, err
	}
	return &sealedSpool{f: f, aead: aead, buf: make([]byte, 0, spoolChunk)}, nil
}

// spool makes an unlinked temporary file.
func spool() (*os.File, error) {
	f, err := os.CreateTemp("", "nudgebot-export-*")
	if err != nil {
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spooling an export: %w", err)
	}
	return f, nil
}

func (s *sealedSpool) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), spoolChunk-len(s.buf))
		s.buf = append(s.buf, p[:n]...)
		p, written = p[n:], written+n
		if len(s.buf) == spoolChunk {
			if err := s.seal(); err != nil {
				return written, err
			}
		}
	}
	s.size += int64(written)
	return written, nil
}

func (s *sealedSpool) nonce(seq uint64) []byte {
	n := make([]byte, s.aead.NonceSize())
	binary.BigEndian.PutUint64(n[len(n)-8:], seq)
	return n
}

// seal writes the buffered plaintext as one chunk: its length, then its
// ciphertext, numbered so chunks cannot be reordered or dropped unseen.
func (s *sealedSpool) seal() error {
	ct := s.aead.Seal(nil, s.nonce(s.seq), s.buf, nil)
	s.seq++
	clear(s.buf)
	s.buf = s.buf[:0]
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], uint32(len(ct)))
	if _, err := s.f.Write(head[:]); err != nil {
		return fmt.Errorf("spooling an export: %w", err)
	}
	if _, err := s.f.Write(ct); err != nil {
		return fmt.Errorf("spooling an export: %w", err)
	}
	return nil
}

// finish seals what is left and returns the plaintext's size and a
// reader of it from the start.
func (s *sealedSpool) finish() (int64, io.ReadSeeker, error) {
	if len(s.buf) > 0 {
		if err := s.seal(); err != nil {
			return 0, nil, err
		}
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return 0, nil, fmt.Errorf("rewinding an export: %w", err)
	}
	return s.size, &spoolReader{s: s, r: bufio.NewReader(s.f), want: s.seq}, nil
}

func (s *sealedSpool) Close() error { return s.f.Close() } // unlinked: nothing to keep

// spoolReader opens a sealedSpool's chunks in order.
type spoolReader struct {
	s     *sealedSpool
	r     *bufio.Reader
	seq   uint64
	want  uint64 // chunks sealed
	plain []byte
}

// Seek rewinds to the start, the only place an upload begins again (a
// kept DM that turned out gone is tried once more in the one opened anew).
func (r *spoolReader) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, errors.New("a spooled export rewinds only to its start")
	}
	if _, err := r.s.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("rewinding an export: %w", err)
	}
	r.r.Reset(r.s.f)
	r.seq, r.plain = 0, nil
	return 0, nil
}

func (r *spoolReader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.seq == r.want {
			return 0, io.EOF
		}
		var head [4]byte
		if _, err := io.ReadFull(r.r, head[:]); err != nil {
			return 0, fmt.Errorf("reading a spooled export: %w", err)
		}
		n := binary.BigEndian.Uint32(head[:])
		if n > spoolChunk+uint32(r.s.aead.Overhead()) {
			return 0, errors.New("reading a spooled export: a chunk is longer than any written")
		}
		ct := make([]byte, n)
		if _, err := io.ReadFull(r.r, ct); err != nil {
			return 0, fmt.Errorf("reading a spooled export: %w", err)
		}
		plain, err := r.s.aead.Open(ct[:0], r.s.nonce(r.seq), ct, nil)
		if err != nil {
			return 0, fmt.Errorf("reading a spooled export: %w", err)
		}
		r.seq++
		r.plain = plain
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}
