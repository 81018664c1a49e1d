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
//	meta          "schema_version" → JSON number (currently 1)
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
//
// The due, outbox and seen_by_time buckets are indexes: they are written
// in the same transaction as the records they index, DB.Check verifies
// them against those records, and the schema 0 → 1 migration rebuilds the
// due index and the outbox.
//
// # Safety
//
// Open refuses, without writing a byte, a file that is empty, truncated,
// damaged (bbolt's own consistency check fails) or written by a newer
// nudgebot; it never starts afresh over data that was expected. Values are
// decoded inside their transaction and callbacks run outside it, so no
// memory owned by bbolt escapes and no caller can hold a transaction open.
package storage
