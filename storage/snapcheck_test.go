package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/storage/boltwalk"
)

// The walk itself is tested in package boltwalk; these tests hold the
// checks that use it to what they promise.

// Ensure Check passes a sound file with reflections under their seal.
func TestCheck_SoundFiles(t *testing.T) {
	db := openWithReflections(t, "U1", 2000, benchText)
	if err := db.Check(); err != nil {
		t.Errorf("reflections: %v", err)
	}
}

// Ensure writers are not held up by the background check: at every
// point where it stops to ask whether to go on (as it starts, every 256
// pages of the tree walk, every 1,024 records), a write commits before
// it goes on. If the check held bbolt's writer lock, the write would
// wait for the check, which waits for the write.
func TestStartCheck_WritersGoOn(t *testing.T) {
	db := openWithSubscribers(t, 5000, 0)
	paused, resume := make(chan struct{}), make(chan struct{})
	var broken atomic.Bool // once a write has waited, let the check run out
	done := make(chan error, 1)
	go func() {
		done <- db.fullCheck(func() error {
			if broken.Load() {
				return nil
			}
			paused <- struct{}{}
			<-resume
			return nil
		})
	}()
	writes := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the check: %v", err)
			}
			if writes < 3 {
				t.Errorf("the check paused %d times; want the start, the tree walk and the records", writes)
			}
			return
		case <-paused:
		}
		committed := make(chan error, 1)
		go func() {
			committed <- db.update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketMeta)).Put([]byte("test-write"), fmt.Appendf(nil, "%d", writes))
			})
		}()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second): // only when broken: the write is waiting for the check
			t.Errorf("write %d waited for the check", writes+1)
			broken.Store(true)
			resume <- struct{}{}
			<-done
			<-committed
			return
		}
		writes++
		resume <- struct{}{}
	}
}

// Ensure Close overtakes a background check rather than wait for it to
// read the whole file, and that what it read counts as nothing found.
func TestStartCheck_CloseStopsIt(t *testing.T) {
	db := openWithSubscribers(t, 5000, 0)
	calls := 0
	err := db.fullCheck(func() error {
		if calls++; calls == 2 {
			db.closing.Store(true) // as Close does before it waits
		}
		return db.stopCheck()
	})
	if !errors.Is(err, errCheckStopped) {
		t.Fatalf("err = %v, want errCheckStopped", err)
	}
	if calls != 2 {
		t.Errorf("the check asked %d times; want it to stop when first told", calls)
	}
}

// Ensure Check names damage that arose after Open (whose walk passed the
// file) and would send bbolt's own check outside the file, instead of
// letting it fault and take the process down: the walk runs first, and
// bbolt's check only on a tree the walk found sound.
func TestCheck_WalksBeforeBboltFollowsPageIDs(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		db := openWithSubscribers(t, 3000, 10)
		path := db.Path()
		if readOnly {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			if db, err = Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}
		var branch, hwm uint64
		pageSize := db.bolt.Info().PageSize
		err := db.bolt.View(func(tx *bolt.Tx) error {
			hwm = uint64(tx.Size()) / uint64(pageSize)
			for id := 2; uint64(id) < hwm && branch == 0; id++ {
				if info, err := tx.Page(id); err == nil && info != nil && info.Type == "branch" && info.Count >= 3 {
					branch = uint64(id)
				}
			}
			return nil
		})
		if err != nil || branch == 0 {
			t.Fatalf("no branch page with 3 children (%v)", err)
		}
		// A middle child, far enough past the end to be outside bbolt's
		// mapping too: its check would read there and fault, which no
		// recover catches.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(binary.LittleEndian.AppendUint64(nil, hwm+100_000), int64(branch)*int64(pageSize)+16+16+8)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		err = db.Check()
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "outside pages 2 to") {
			t.Errorf("read-only %v: Check = %v; want ErrDamaged naming the page outside the file", readOnly, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Ensure Open notices a file that another process wrote between the walk
// and bbolt's lock: bbolt would then serve a snapshot nobody checked.
func TestSameSnapshot_RefusesAnotherTransaction(t *testing.T) {
	db := openWithSubscribers(t, 10, 0)
	path, pageSize := db.Path(), db.bolt.Info().PageSize
	var txid uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error { txid = uint64(tx.ID()); return nil }); err != nil {
		t.Fatal(err)
	}
	walked := &boltwalk.Meta{PageSize: pageSize, TxID: txid}
	if err := sameSnapshot(db.bolt, path, walked); err != nil {
		t.Errorf("the transaction walked: %v", err)
	}
	if err := db.update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte("test-write"), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := sameSnapshot(db.bolt, path, walked); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "changed while nudgebot was checking it") {
		t.Errorf("after another commit: %v; want ErrInUse saying the file changed", err)
	}
	if err := sameSnapshot(db.bolt, path, nil); err != nil {
		t.Errorf("a fresh file (nothing walked): %v", err)
	}
}
