package pgstore

import (
	"context"
	"fmt"

	"github.com/nudgebot/nudgebot/storage"
)

// copyLock is the first key ("nc") of the advisory lock that `nudgebot
// migrate` holds on its source and its target while it copies; the
// second is the schema's hash, as the migration lock's. A bot taking the
// lock shared at Open meets it: a bot starting on the source mid-copy
// would write what the copy misses, and on the target beside the copy.
const copyLock = 0x6e63

// HoldForCopy takes the copy lock of the database opts name, on a
// connection of its own, until release; a nudgebot starting on that
// database meanwhile refuses at Open. storage.ErrInUse when another
// copy holds it. Take it after Open: the lock is named by the schema,
// which Open creates.
func HoldForCopy(ctx context.Context, opts Options) (release func(), err error) {
	conn, where, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	release = func() { _ = conn.Close(context.Background()) }
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", copyLock).Scan(&got); err != nil {
		release()
		return nil, fmt.Errorf("%s: take the copy lock: %w", where, err)
	}
	if !got {
		release()
		return nil, fmt.Errorf("%s is being copied by another nudgebot migrate: wait for it to finish: %w", where, storage.ErrInUse)
	}
	return release, nil
}

// notCopying refuses to open a database a migrate is copying: a bot,
// or a second migrate.
// The lock is taken shared for the transaction only: bots starting
// together do not wait on each other, and a copy starting later is
// refused by the bot's connections (see cmd/nudgebot's notRunning).
func notCopying(ctx context.Context, q querier) error {
	var free bool
	if err := q.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock_shared($1, hashtext(current_schema()))", copyLock).Scan(&free); err != nil {
		return fmt.Errorf("look for a copy in progress: %w", err)
	}
	if !free {
		return fmt.Errorf("nudgebot migrate is copying this database: wait for it to finish, then start nudgebot (on the database it copied into, if that is the one to use now): %w", storage.ErrInUse)
	}
	return nil
}
