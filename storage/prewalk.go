package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/storage/boltwalk"
)

// walkFile checks an existing file page by page before bbolt maps it
// (boltwalk.File), holding a shared lock on it meanwhile so that no
// nudgebot writes to it while it is read. It returns the meta it
// walked, for sameSnapshot, or nil when there is no file yet.
func walkFile(path string, opts Options) (*boltwalk.Meta, error) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly:
		return nil, nil // a fresh database
	case err != nil:
		return nil, fmt.Errorf("database %s cannot be read: %w: check its permissions and storage.path", path, err)
	}
	defer f.Close()
	if err := lockShared(f, opts.Timeout); err != nil {
		return nil, inUseError(path, err)
	}
	defer releaseLock(f)
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("database %s cannot be read: %w", path, err)
	}
	meta, err := boltwalk.File(f, info.Size())
	var damage *boltwalk.Damage
	switch {
	case errors.As(err, &damage):
		return nil, &openError{
			msg: fmt.Sprintf("database %s is damaged, so nudgebot did not open it and changed nothing in it: keep the damaged file, "+
				"and restore the latest backup with `nudgebot restore` (see docs/operations.md). What is wrong:\n%v", path, err),
			kinds: []error{ErrDamaged, err},
		}
	case err != nil:
		return nil, fmt.Errorf("database %s could not be read to the end, so nudgebot did not open it and changed nothing in it: %w: check the disk, then try again", path, err)
	}
	return &meta, nil
}

// sameSnapshot confirms that bbolt opened the transaction the walk
// checked. Another process that wrote to the file between the walk and
// bbolt's lock would have left a snapshot nobody checked.
func sameSnapshot(bdb *bolt.DB, path string, walked *boltwalk.Meta) error {
	if walked == nil {
		return nil
	}
	return bdb.View(func(tx *bolt.Tx) error {
		if uint64(tx.ID()) != walked.TxID {
			return &openError{
				msg:   fmt.Sprintf("database %s changed while nudgebot was checking it, so another process writes to it: nothing was changed; stop the other process, or point storage.path elsewhere, and try again", path),
				kinds: []error{ErrInUse},
			}
		}
		return nil
	})
}

func inUseError(path string, cause error) error {
	return &openError{
		msg:   fmt.Sprintf("database %s is in use by another process: stop the other nudgebot, or point storage.path elsewhere", path),
		kinds: []error{ErrInUse, cause},
	}
}
