// Package storage keeps nudgebot's state in a bbolt file and, beside it,
// a small bbolt file of secrets (SecretsPath). It adapts
// go.etcd.io/bbolt to the domain types of package nudges and speaks in
// domain terms (subscribers, deliveries, envelopes); callers never see a
// bucket, a transaction or a byte slice. It may import nudges and bbolt,
// never bot or slack.
//
// # Bucket layout
//
// Every value is JSON, so that the file can be read with ordinary tools
// (`bbolt get`, `bbolt page`), except the delivery records, which are a
// compact binary record of their own (see "The delivery record"): a
// deployment keeps millions of them. Every bucket is created in one
// transaction when the file is opened.
//
//	meta          "schema_version" → JSON number (currently 5);
//	              "needs_compaction" → true once deleted reflections or a
//	              forgotten person may linger in free pages, or moved
//	              secrets, until Compact
//	              "secrets_embedded" → true in a backup whose secrets
//	              are still in this file (see "The secrets file")
//	              "write_probe" → JSON time of the last ProbeWrite,
//	              the write that finds a refusing disk taking writes again
//	subscribers   user id → nudges.Subscriber
//	due           8-byte big-endian UnixNano(NextDue) ‖ user id → empty
//	              one entry per subscriber whose NextDue is non-zero, so
//	              finding who is due costs as much as the number due
//	delivery_records 4-byte big-endian Unix second of the slot ‖ kind
//	              (0 scheduled, 1 manual: "/nudge now") ‖ user id →
//	              the delivery record; keyed by slot, so a day's
//	              deliveries are appended at the end of the bucket and
//	              retention deletes whole pages from its start
//	deliveries_by_person user id ‖ 0x00 ‖ 2-byte big-endian period
//	              (the slot's second >> 21, about 24 days) → the
//	              person's deliveries in that period, each a uvarint of
//	              (second within the period << 1 | kind), ascending: one
//	              key per person-month rather than per delivery
//	delivery_outbox record key → empty, for each delivery in state
//	              pending
//	seen          Socket Mode envelope key → JSON time first seen
//	seen_by_time  8-byte big-endian UnixNano(seen) ‖ envelope key → empty,
//	              so pruning old envelopes is not a full scan
//	digests       channel id → JSON {last, broken, broken_at}: when the
//	              channel last got its digest, and why it cannot now
//	pulses        pulse id → JSON {channel, opened, closed}: where a
//	              pulse's summary went once closed (schema 3 and older
//	              also kept the open pulse's totals and voter_key here)
//	pulse_history channel id ‖ 0x00 ‖ 8-byte big-endian UnixNano(closed)
//	              ‖ pulse id → nudges.PulseSummary, oldest first
//	reflections   user id ‖ 0x00 ‖ 8-byte big-endian seq → JSON
//	              {sealed, data_key, user_id, seq, created, share,
//	              share_channel, …}: text and commitment sealed, the
//	              rest plain but bound into the seal (see below)
//	reflection_seq user id → JSON number: the last seq assigned
//	follow_ups    8-byte big-endian UnixNano(FollowUpDue) ‖ reflection
//	              key → empty, for each follow-up not yet answered
//	shared_by_person user id ‖ 0x00 ‖ 8-byte UnixNano(created) ‖ seq →
//	              empty, for each shared reflection
//	forgetting    user id → JSON time, while a Forget is unfinished
//
// The due, delivery_outbox, deliveries_by_person and seen_by_time
// buckets are indexes: they are written in the same transaction as the
// records they index, and DB.Check verifies them against those records.
// The schema 0 → 1 migration rebuilds the due index and the outbox. The
// schema 1 → 2 migration re-seals every reflection under the additional
// data described below and turns the user ids in pulse_voters into keyed
// markers. The 2 → 3 migration builds deliveries_by_slot, the slot index
// of schema 3 and 4, when deliveries were JSON under their ids
// (user id "-" slot as 20060102T150405Z ["-now"]) in "deliveries", with
// an "outbox" of those ids. The 4 → 5 migration moves them to the
// binary records (below) and drops those three buckets.
//
// The follow_ups and shared_by_person buckets are indexes like these,
// and DB.Check verifies them too.
//
// # The secrets file
//
// What must be erasable at once lives in a small file of its own beside
// the main one (nudgebot.db keeps it in nudgebot.keys.db), which is
// compacted after every change that must erase something: a forget, a
// vote or "hear more" answer, a pulse closing, a key rotation. bbolt never
// zeroes a freed page, so only a rewrite erases; this file is about 150
// bytes a person, so the rewrite takes milliseconds, and the main file,
// which never holds a secret, needs no compaction for erasure.
//
//	datakeys      user id → JSON {id, master, sealed}: the person's data
//	              key, sealed under master key "master"
//	open_pulses   pulse id → JSON {voter_key, totals}: an open pulse's
//	              random 32-byte voter key and running totals (a
//	              nudges.PulseSummary), never who gave which score;
//	              deleted when the pulse closes
//	pulse_voters  pulse id ‖ 0x00 ‖ HMAC-SHA256(voter_key, user id) →
//	              JSON {voted, hear_more}: a marker per person who has
//	              answered an open pulse (not what), so each person
//	              votes once; Forget leaves markers alone (deleting one
//	              would let its person vote again), and they are
//	              deleted with the key when the pulse closes
//
// The 3 → 4 migration writes this file from the main file's datakeys,
// pulse_voters and open pulses' keys and totals, renames it into place,
// then commits the main file without them and compacts it once. A
// backup (DB.WriteTo) is one file, the secrets embedded the schema 3
// way, under the schema version of the file it copies and the meta key
// secrets_embedded ("true"): so a nudgebot older than that version
// refuses it, and the first read-write Open of it moves the secrets out
// the same way, replacing any secrets file beside it (a read-only open
// reads them where they are). The move's commit sets needs_compaction,
// so an Open cut short before the compaction leaves it to the next.
// A backup of a schema 4 file is marked schema 3, which it then is. Changes
// that span both files are ordered so that a crash leaves nothing
// readable that should not be: a new data key commits before the
// reflection it seals; a forget marks the person in the main file,
// deletes their key and compacts the secrets file, then erases their
// records; a pulse's close files its summary, then erases its secrets
// (Open finishes both if cut short).
//
// # What a person owns
//
// ExportAll and ExportPerson walk the records a person owns, wherever
// they are: subscribers, deliveries (found through
// deliveries_by_person, in slot order) and reflections (a reflection
// carries its share setting and its follow-up). The other buckets that
// name people hold no records of their own: due, delivery_outbox,
// deliveries_by_person, follow_ups and shared_by_person index those
// three; reflection_seq only numbers
// reflections; the secrets file holds no record of a person; forgetting
// marks people whose records are on their way out, whom the walk leaves
// out. A bucket added to the layout that holds
// records of a person must be walked there, and erased by Forget.
//
// # The record format
//
// Subscribers and closed pulses are stored as the JSON encoding of
// nudges.Subscriber and nudges.PulseSummary, so their format lives in
// package nudges, in the JSON tags of those types. That is deliberate:
// the same encoding is what a person gets from `/reflect export` and
// what `nudgebot export` writes, and one format for the file and for
// exports keeps the file readable with `bbolt get` and the exports in
// step with it without a translation layer to maintain. Deliveries are
// exported as the JSON of nudges.Delivery too, but stored as below.
// Everything else (reflections, data keys, digest and pulse state) has a
// record type private to this package, because what is stored differs
// from the domain value: a reflection's text is sealed, a pulse keeps
// running totals and never who gave which score.
//
// The consequence is that a renamed field or JSON tag in nudges changes
// the file format: old records would decode with that field empty. The
// encoded form of a fully populated value of each of the three types
// (the delivery as its JSON and as its binary record) is pinned by
// TestRecordFormatPinned, so such a change fails a test and must come
// with a schema version and a migration. Adding a field is compatible
// when it is omitempty or omitzero: older records decode with its zero
// value, and the pinned test asks for the golden record to be extended.
//
// # The delivery record
//
// A delivery's key says whose it is and which slot (see the layout); its
// id is made from them, never stored. The record (delivery_codec.go) is:
// a format byte (1); a 2-byte little-endian bitmap of the fields present
// (a zero value is left out); the state; then each present field in bit
// order: nudge id, theme, role, reason, round, attempts, try_at,
// channel, ts, created, sent_at, outcome, acted_at, snooze_to, feedback,
// and the slot's nanoseconds when it is off the second. Strings are a
// uvarint length and their bytes; state, theme, role, outcome and
// feedback are a byte from a fixed table (appended to, never reordered),
// or 0xff and the value as a string when the table lacks it; counts are
// zigzag varints; a time is a uvarint of its zigzag seconds from the
// slot, shifted left once, the low bit saying whether a uvarint of
// nanoseconds follows; a Slack timestamp is a number (seconds from the
// slot and microseconds) when it reads back exactly, else a string. A
// record of a sent and answered nudge takes about 125 bytes (its JSON
// took about 450), most of it the reason and the nudge id; the decoder
// refuses anything else with an error (FuzzDecodeDelivery).
//
// The records bucket is written with FillPercent 0.75: bbolt's default
// of 0.5 leaves every page half empty when keys only grow, and a full
// page would split again as soon as its records grow (a pending record
// gains its channel, timestamp and, hours later, its outcome).
// docs/performance.md (section 7) says where the file's bytes go.
//
// The 4 → 5 migration (migrate5.go) runs when Open meets an older file,
// before Open returns: it moves the deliveries in transactions of 5,000,
// in slot order through the old slot index, each transaction writing the
// new records and deleting the old ones, so a crash leaves every
// delivery in exactly one layout and the next Open carries on; the
// schema version says 4 until the old buckets are dropped. It logs its
// progress every 10 s. A record that does not decode stops it with an
// error naming the record, the file left at schema 4. Open then compacts
// the file once (as after the 3 → 4 move), before it returns, so the old
// records' pages, most of the file, go back to the disk without a write
// waiting for the copy: about a minute per million deliveries in all
// (docs/operations.md, Upgrade).
//
// # Moving to another engine
//
// Dump streams the whole database as the engine-neutral records of
// records.go (domain values, and reflections and data keys in their
// sealed form, which both engines share), and a Loader writes such a
// stream into an empty database, building the indexes from the records;
// storage/pgstore does the same for PostgreSQL, and `nudgebot migrate`
// (ops.Migrate) joins the two and compares what each side holds with a
// Tally. Neither reads the other's bytes, so a change of this layout is
// a change of Dump and the Loader, tested by the round trips in
// load_test.go and storage/pgstore.
//
// # Retention
//
// Prune (and ApplyRetention, with Options.Retention) removes deliveries
// older than the cutoff, the records of pulses closed before it, pulse
// summaries older than it beyond each channel's newest
// nudges.TrendPeriods+1, and envelopes handled before it, in write
// transactions of at most a few hundred records. Nothing is rolled up:
// the retention is at least nudges.MinRetention, longer than any reader
// of delivery history looks back (nudges.HistoryWindow), and the pulse
// trend reads a count of summaries, which are kept, so what people and
// digests are shown does not change. Subscribers and reflections are
// never pruned by age.
//
// # Group commits
//
// Every bbolt commit pays two fsyncs (the data pages, then the meta
// page), and bbolt runs one writer at a time, so a delivery's state
// changes (recorded, attempt, sent) once queued behind each other's
// fsyncs: the disk, not Slack, set the pace. The delivery writes
// (StartDelivery, StartDeliveries, RecordMissed, UpdateDelivery,
// RecordOutcome) and the frequent small ones (UpdateSubscriber, MarkSeen)
// therefore go through a commit queue (group.go): writes that arrive
// while a transaction commits wait and then share the next one, and one
// fsync pair makes all of them durable. Each caller still returns only
// once its own write is durable, so a sender posts only after its
// attempt is on disk. StartDeliveries goes further for planning: a tick
// records up to 128 planned deliveries, with their subscribers' due-time
// advances, in one transaction.
//
// The queue is ours rather than bbolt's DB.Batch because Batch gathers
// by time: a batch starts when MaxBatchDelay (10 ms) runs out or
// MaxBatchSize calls arrived, so a lone write, such as a button click or
// a sender in a quiet minute, waits the whole delay, and a sender's two
// writes per nudge would cost it 20 ms however fast the disk. Our queue
// gathers by commit: the first writer to find no commit running leads
// and commits at once; what queues meanwhile goes in the next commit,
// led by the first writer waiting (so no caller keeps committing for
// others). The group is as large as the disk is slow, with no delay and
// no goroutine or timer to manage. Like Batch, bbolt has no savepoints:
// when one write of a group fails, the transaction rolls back, that
// caller gets its error, and the others run again without it. So every
// function passed to write may run more than once; each starts from what
// it reads in the transaction and only overwrites what it hands back,
// and the callbacks of the public methods are documented to change only
// the record they are given. Stats counts writes and commits, so the
// grouping can be seen (the bench reports commits per nudge).
//
// A delivery's state changes write only what changed: an attempt
// rewrites the delivery record alone (its outbox entry is left as it
// is, not written again), and a subscriber whose due time did not move
// keeps its due-index entry.
//
// # Reflections at rest
//
// A reflection's text and commitment are sealed with AES-256-GCM under a
// random data key of its author (envelope encryption); the data key is
// sealed under a master key from LoadKeys. The seal's additional data
// binds every plain field that decides who sees the reflection: author,
// seq, creation time, share setting and share channel. Someone who can
// write the file but has no key cannot flip a private reflection to
// shared: the record then fails to open (ErrTampered), the digest
// leaves it out and logs it, and Check reports it.
//
// Forget deletes the data key first, from the secrets file, and compacts
// that file, so the person's reflections cannot be opened from either
// file, or any copy of them made later, from then on; then it deletes
// every record about them. Their sealed reflections may linger in the
// main file's free pages, as ciphertext nobody can open; their plain
// records (schedule, deliveries) linger there until Compact rewrites it.
// A backup taken before the Forget still holds the data key sealed under
// the master key: it opens for as long as that master key lives. A
// reflection deleted on its own keeps its author's key, so it lingers
// readable (with the key) until Compact.
//
// # Transactions and callbacks
//
// Values are decoded inside their transaction, so no memory owned by
// bbolt escapes it. Methods that take a function come in two kinds:
//
//   - Walks (ForEachSubscriber, DeliveriesBetween) read in short
//     transactions and call the function outside them, so it may take
//     its time and call other DB methods; the walk is not a snapshot.
//   - Read-modify-writes (UpdateSubscriber, UpdateDelivery,
//     RecordOutcome, UpdateReflection, and the advance function of
//     StartDelivery and RecordMissed) call the function inside the write
//     transaction, on a decoded copy of the record, and save what it
//     leaves there in that same transaction; if it returns an error
//     nothing is written. That is what makes a change atomic: two clicks
//     on one nudge cannot both record an outcome, and a tick advancing
//     NextDue cannot interleave with `/nudge time`.
//
// Running caller code under bbolt's single writer lock is safe because
// the functions passed are pure: they change the record in memory by the
// domain's rules (package nudges) and do no I/O (no Slack call, no file
// or network access; a log line at most), so the lock is held for
// microseconds and nothing outside the transaction is left half-done if
// it rolls back. They must not call DB methods: a
// write would wait for the lock its caller holds, and a read can wait
// for a remap of the file that the write in progress has started.
//
// # Safety
//
// Open refuses, without writing a byte, a file that is empty, truncated,
// damaged or written by a newer nudgebot; it never starts afresh over
// data that was expected. Before bbolt maps an existing file, Open walks
// all its pages with package boltwalk (pread, time linear in the file's
// size, memory bounded): bbolt panics, loops or faults on some damaged
// files, and a fault cannot be recovered. A damaged file is refused with
// ErrDamaged. Check then reads every record too (the walk, bbolt's own
// consistency check on a tree the walk found sound, and the indexes
// against their records) holding the writer lock; StartCheck, which a
// running bot calls after start-up, checks the same on a snapshot while
// writers go on, for damage that arises after Open.
package storage
