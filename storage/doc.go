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
//	meta          "schema_version" → JSON number (currently 2);
//	              "needs_compaction" → true once a deletion that
//	              deleted something may linger in free pages, until
//	              Compact
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
//	pulses        pulse id → JSON {channel, opened, closed, totals,
//	              voter_key}; the running totals of an open pulse,
//	              never who gave which score, and its random 32-byte
//	              voter key; once closed, only where its summary went
//	              (the key is destroyed)
//	pulse_voters  pulse id ‖ 0x00 ‖ HMAC-SHA256(voter_key, user id) →
//	              JSON {voted, hear_more}: a marker per person who has
//	              answered an open pulse (not what), so each person
//	              votes once; Forget leaves markers alone (deleting one
//	              would let its person vote again), and they are
//	              deleted with the key when the pulse closes
//	pulse_history channel id ‖ 0x00 ‖ 8-byte big-endian UnixNano(closed)
//	              ‖ pulse id → nudges.PulseSummary, oldest first
//	datakeys      user id → JSON {id, master, sealed}: the person's data
//	              key, sealed under master key "master"
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
// The due, outbox and seen_by_time buckets are indexes: they are written
// in the same transaction as the records they index, DB.Check verifies
// them against those records, and the schema 0 → 1 migration rebuilds the
// due index and the outbox. The schema 1 → 2 migration re-seals every
// reflection under the additional data described below and turns the
// user ids in pulse_voters into keyed markers.
//
// The follow_ups and shared_by_person buckets are indexes like these,
// and DB.Check verifies them too.
//
// # What a person owns
//
// ExportAll and ExportPerson walk the records a person owns, wherever
// they are: subscribers, deliveries and reflections (a reflection carries
// its share setting and its follow-up). The other buckets that name
// people hold no records of their own: due, outbox, follow_ups and
// shared_by_person index those three; reflection_seq only numbers
// reflections; datakeys are secrets that never leave the file; forgetting
// marks people whose records are on their way out, whom the walk leaves
// out; pulse_voters says who answered an open pulse, never what, and is
// deleted when the pulse closes. A bucket added to the layout that holds
// records of a person must be walked there, and erased by Forget.
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
// Forget deletes the data key first, in a transaction of its own, so
// the person's reflections cannot be opened from this file from then on,
// then deletes every record about them. A backup taken before the Forget
// still holds the data key sealed under the master key: it opens for as
// long as that master key lives. Deleted records linger in bbolt's free
// pages until Compact rewrites the file.
//
// # Safety
//
// Open refuses, without writing a byte, a file that is empty, truncated,
// damaged (bbolt's own consistency check fails) or written by a newer
// nudgebot; it never starts afresh over data that was expected. Values are
// decoded inside their transaction and callbacks run outside it, so no
// memory owned by bbolt escapes and no caller can hold a transaction open.
package storage
