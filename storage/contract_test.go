package storage_test

import (
	"errors"
	"path/filepath"
	"testing"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// The ports' contract, on the bbolt file; storage/pgstore runs the same
// suite on PostgreSQL.
func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Opener {
		path := filepath.Join(t.TempDir(), "nudgebot.db")
		return func(o storagetest.Options) (storagetest.Store, error) {
			db, err := storage.Open(path, storage.Options{Keys: o.Keys, Now: o.Now, Retention: o.Retention})
			if err != nil {
				return nil, err
			}
			return checkedDB{db, t}, nil
		}
	})
}

// checkedDB checks the file as it closes: every test leaves indexes
// that match their records.
type checkedDB struct {
	*storage.DB
	t *testing.T
}

func (c checkedDB) Close() error {
	if err := c.Check(); err != nil && !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		c.t.Errorf("Check at close: %v", err)
	}
	return c.DB.Close()
}

func openBench(b *testing.B) storagetest.BenchStore {
	db, err := storage.Open(filepath.Join(b.TempDir(), "nudgebot.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// The same benchmarks as storage/pgstore's:
//
//	go test -run '^$' -bench 'Due100k|StartDeliveries1000' -benchtime 20x ./storage/ ./storage/pgstore/
func BenchmarkDue100k(b *testing.B)             { storagetest.BenchDue(b, openBench) }
func BenchmarkStartDeliveries1000(b *testing.B) { storagetest.BenchStartDeliveries(b, openBench) }
func BenchmarkSendWrites(b *testing.B)          { storagetest.BenchSendWrites(b, openBench) }
