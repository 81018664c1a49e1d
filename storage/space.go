package storage

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BucketSpace is what one bucket takes of the file.
type BucketSpace struct {
	Name       string
	Keys       int
	LeafBytes  int // bytes of leaf pages allocated
	LeafInUse  int // of which holding entries
	BranchByte int // bytes of branch pages allocated
}

// Space says where the file's bytes go: each bucket's pages, and the
// free pages bbolt will reuse. It reads every page of the file in one
// read transaction, so it is for tools and benches, not a running bot.
func (db *DB) Space() (buckets []BucketSpace, freeBytes int, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			buckets = append(buckets, BucketSpace{Name: string(name), Keys: s.KeyN, LeafBytes: s.LeafAlloc, LeafInUse: s.LeafInuse, BranchByte: s.BranchAlloc})
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("storage: space of %s: %w", db.path, err)
	}
	db.mu.RLock()
	st := db.bolt.Stats()
	db.mu.RUnlock()
	return buckets, (st.FreePageN + st.PendingPageN) * db.bolt.Info().PageSize, nil
}
