// Package pgstore keeps nudgebot's state in PostgreSQL, for deployments
// that outgrow one file on one disk: a managed database with
// point-in-time recovery, and several replicas sharing it. It
// satisfies every storage port the core declares (app/ports.go) with the
// same behaviour as the bbolt engine in package storage, which the
// contract suite in storage/storagetest checks on both. It uses
// github.com/jackc/pgx/v5 (pgxpool); bbolt stays the default, and
// nothing on the bbolt path imports this package's dependencies except
// the wiring that chooses an engine.
//
// # Tables
//
// One table per bbolt bucket (migrations/0001_initial.sql says what
// each holds). Records are the same JSON encodings of package nudges
// (jsonb), so an export, a bbolt file and a row read alike; beside them
// are the columns the indexes and the conditional writes need. Times in
// those columns are Unix nanoseconds (bigint), because timestamptz keeps
// microseconds and a due time compared for an exactly-once start must
// round-trip to the nanosecond. Ids are COLLATE "C", so they sort as
// bbolt's keys do and every order the ports promise is the same.
//
// # Migrations
//
// The schema is a numbered list of .sql files embedded in the binary
// (migrations/NNNN_what.sql). Open applies those the database lacks, all
// in one transaction holding a transaction-level advisory lock, and
// records each in schema_migrations: replicas starting together migrate
// once, the others wait and find nothing to do, and a failed migration
// leaves the schema as it was (PostgreSQL's DDL is transactional). A
// database whose schema is newer than the binary is refused
// (storage.ErrNewerSchema), never written.
//
// This is written by hand on pgx rather than with goose, golang-migrate
// or tern because the need is about sixty lines: forward-only, embedded,
// one engine, applied at start, all pending migrations in one
// transaction. golang-migrate and goose bring their own drivers, a CLI
// and down-migrations nudgebot would not use. tern is pgx's own tool and
// the closest fit, but its migrator works on a single *pgx.Conn rather
// than the pool, applies each migration in a transaction of its own, and
// adds templating and down-migrations. Owning these lines keeps the lock
// and the transaction one thing, which is what makes replicas starting
// together safe, and adds no dependency beside pgx.
//
// # Exactly once
//
// StartDeliveries locks the subscribers' rows (SELECT … FOR UPDATE, in
// user id order so two replicas cannot deadlock), checks which deliveries
// exist, decides each start against what is stored (the slot not yet
// recorded; NextDue still equal to expectNextDue), then writes every new
// delivery and advanced subscriber in one round trip, in one
// transaction. The delivery id is the primary key, so even two writers
// that raced past the check cannot both insert: the loser's transaction
// fails with a unique violation and runs again from the start, and then
// sees the winner's delivery. The functions the ports take may therefore
// run more than once, as the port says. Serialization failures and
// deadlocks are retried the same way, up to eight times.
//
// # The due index
//
// Due reads the partial index subscribers_due (next_due, user_id) from
// its start to now, so its cost follows the number due, not the number
// of subscribers; TestDueReadsTheIndex asks PostgreSQL for the plan.
// The planner needs statistics to choose the index: autovacuum gathers
// them, and the bulk imports ANALYZE at once.
//
// # Reflections and erasure
//
// Reflections are sealed by package storage's own code (storage.DataKey,
// storage.Keys): AES-256-GCM under a random data key per person, itself
// sealed under the master key, the seal binding author, seq, creation
// time, share setting and share channel. Only the ciphertext and the
// plain fields are stored; a share setting changed in the database
// without the key makes the reflection fail to open (storage.ErrTampered),
// and digests leave it out. Open refuses a database whose data keys are
// sealed under a master key that is not configured.
//
// Forget deletes the person's data key first, in a transaction of its
// own (crypto-shredding), then every row about them; an unfinished
// Forget is finished by the next Open. Both steps, and every save of a
// reflection, hold the person's advisory lock, so a save racing a Forget
// either lands before it (and is erased) or after it (under a fresh
// key), never sealed under the destroyed key after the erase, as the
// bbolt file's single writer guarantees by itself. What that does and does not
// erase in PostgreSQL:
//
//   - A DELETE does not remove a row: the old row version stays in its
//     table page, dead, until VACUUM (autovacuum, or Compact, which the
//     hourly housekeeping calls after a Forget) marks its space free,
//     and its bytes remain on disk until that space is reused. The same holds for
//     index entries and TOAST. So the deleted data-key row (the data key
//     sealed under the master key) and the reflection ciphertext linger
//     for a while in the data files.
//   - Every change is also in the write-ahead log: the inserted data key
//     and reflections are in WAL segments until they are recycled, and
//     for ever in WAL archives and base backups kept for point-in-time
//     recovery, and in any streaming replica's copy and pg_dump taken
//     before the Forget.
//
// None of those copies hold a reflection in the clear. Each holds
// ciphertext and the data key sealed under the master key, so they can
// be opened by whoever also holds the master key, for as long as both
// survive. The operator must therefore: keep the master key out of the
// database and its backups (NUDGEBOT_SECRET_KEY or storage.key_file,
// never a table); age WAL archives and base backups out on a schedule
// they can state to people (the PITR window is how long a forgotten
// person's data can still be recovered); and, where a stronger promise
// is needed, rotate the master key (list the new key first, run once so
// RotateKeys re-seals every data key, then drop the old key and destroy
// it) once the backups older than a Forget have aged out or at once:
// without the old master key no copy of a shredded data key opens.
// VACUUM FULL rewrites a table without its dead rows if the data files
// themselves must be clean sooner; it locks the table while it runs.
//
// # Moving between engines
//
// Dump streams the database as storage's engine-neutral records from one
// repeatable-read snapshot, and BeginLoad writes such a stream into an
// empty database (COPY, in one transaction that holds the data tables
// against writers), readable back through the same transaction before it
// commits, so `nudgebot migrate` verifies a copy nobody else can yet see.
// BotConnections tells a running bot's connections by the
// application_name its pool gives them.
//
// # Replicas: the lease and the fence
//
// Replicas sharing the database elect the one that runs the scheduler
// through the leases table (migration 0003): the row 'scheduler', holding
// the holder's name, an epoch counting the terms, and when it expires by
// the database's clock (clock_timestamp()), never a replica's. Lead renews
// the row for its holder under the epoch it holds, or takes it with the
// next epoch once it has expired; two replicas taking it at once queue
// on the row lock and the second finds it taken (TestLeaseContendersOneWinnerPerEpoch).
//
// The same table counts the replicas alive, so each can take its share
// of Slack's per-method limits: Present upserts the row 'replica:' and
// the holder's name, expiring by the database's clock, and counts the
// rows not expired (deleting those that are); Depart deletes it on a
// graceful stop. No new table was needed: the rows have the lease's
// shape (a name, a holder, an expiry) and, like it, are the replicas'
// business, not a record (schemaTables: neither dumped nor counted).
//
// The epoch is the fencing token. Once a process has called Lead, its
// leader writes (StartDeliveries of scheduled slots, RecordMissed, the
// digest and pulse records, retention and pruning) first check, in
// their own transaction, that the epoch it last won still holds an
// unexpired lease, holding the row shared (FOR SHARE) until they commit:
// a takeover, which updates the row, waits for them, so a write either
// commits before the takeover or is refused with ErrNotLeader and writes
// nothing. A process paused inside such a transaction would hold up the
// takeover for as long as it stays paused; the session setting
// idle_in_transaction_session_timeout (5s, below a lease's time to live
// less a renewal) has the server end its session instead. Writes any
// replica makes for a person (their settings, answers, reflections, a
// nudge asked for now) are not fenced: the row locks and conditional
// updates already order them.
//
// WakeLeader and ListenWakes carry a schedule changed on one replica to
// the leader's due loop with LISTEN/NOTIFY on a channel named after the
// schema, rather than a poll: the leader hears it within milliseconds,
// and an idle database costs nothing. LISTEN needs a session of its own,
// so it runs on a connection outside the pool (behind a
// transaction-pooling proxy it does not work, and the due loop finds the
// change at its next look, at most a minute later).
//
// # Not here
//
// The file-only operations of the bbolt engine (backup over the socket,
// restore, compact of the file, the full page check) have no
// counterpart: PostgreSQL has its own tools (pg_dump, base backups and
// PITR, VACUUM, amcheck).
package pgstore
