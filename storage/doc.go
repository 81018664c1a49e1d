// Package storage keeps nudgebot's state in one bbolt file. It adapts
// go.etcd.io/bbolt to the domain types of package nudges and speaks in
// domain terms (subscribers, deliveries, envelopes); callers never see a
// bucket, a transaction or a byte slice. It may import nudges and bbolt,
// never bot or slack.
//
// # Bucket layout
//
// Every value is JSON so that the file can be exported and read with
// ordinary tools (`bbolt get`, `bbolt page`). Every bucket is created in
// one transaction when the file is opened.
//
//	meta          "schema_version" → JSON number (currently 1);
//	              "needs_compaction" → true once deleted data may
//	              linger in free pages, until Compact
//	subscribers   user id → nudges.Subscriber
//	due           8-byte big-endian UnixNano(NextDue) ‖ user id → empty
//	              one entry per subscriber whose NextDue is non-zero, so
//	              finding who is due costs as much as the number due
//	deliveries    delivery id → nudges.Delivery, where the id is
//	              user id "-" slot as 20060102T150405Z ["-now" if manual];
//	              a person's deliveries sort together, by slot
//	outbox        delivery id → empty, for each delivery in state pending
//	seen          Socket Mode envelope key → JSON time first seen
//	seen_by_time  8-byte big-endian UnixNano(seen) ‖ envelope key → empty,
//	              so pruning old envelopes is not a full scan
//	digests       channel id → JSON {last, broken, broken_at}: when the
//	              channel last got its digest, and why it cannot now
//	pulses        pulse id → JSON {channel, opened, closed, totals}; the
//	              running totals of an open pulse, never who gave which
//	              score; once closed, only where its summary went
//	pulse_voters  pulse id ‖ 0x00 ‖ user id → JSON {voted, hear_more}:
//	              who has answered an open pulse (not what), so each
//	              person votes once; deleted when the pulse closes
//	pulse_history channel id ‖ 0x00 ‖ 8-byte big-endian UnixNano(closed)
//	              ‖ pulse id → nudges.PulseSummary, oldest first
//	datakeys      user id → JSON {id, master, sealed}: the person's data
//	              key, sealed under master key "master"
//	reflections   user id ‖ 0x00 ‖ 8-byte big-endian seq → JSON
//	              {sealed, data_key, seq, created, …}: text and
//	              commitment sealed, the rest plain
//	reflection_seq user id → JSON number: the last seq assigned
//	follow_ups    8-byte big-endian UnixNano(FollowUpDue) ‖ reflection
//	              key → empty, for each follow-up not yet answered
//	shared_by_person user id ‖ 0x00 ‖ 8-byte UnixNano(created) ‖ seq →
//	              empty, for each shared reflection
//	forgetting    user id → JSON time, while a Forget is unfinished
//
// The due, outbox and seen_by_time buckets are indexes: they are written
// in the same transaction as the records they index, DB.Check verifies
// them against those records, and the schema 0 → 1 migration rebuilds the
// due index and the outbox.
//
// The follow_ups and shared_by_person buckets are indexes like these,
// and DB.Check verifies them too.
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
// sealed under a master key from LoadKeys. Forget deletes the data key
// first, in a transaction of its own, so the person's reflections are
// unreadable from then on, then deletes every record about them. Deleted
// records linger in bbolt's free pages until Compact rewrites the file.
//
// # Safety
//
// Open refuses, without writing a byte, a file that is empty, truncated,
// damaged (bbolt's own consistency check fails) or written by a newer
// nudgebot; it never starts afresh over data that was expected. Values are
// decoded inside their transaction and callbacks run outside it, so no
// memory owned by bbolt escapes and no caller can hold a transaction open.
package storage
