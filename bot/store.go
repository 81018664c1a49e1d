package bot

import (
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// Store is what the bot needs from storage. storage.DB satisfies it; the
// interface lives here, with its one user, so the bot never sees bbolt.
type Store interface {
	// MarkSeen records an envelope or event key; first is false when it
	// was recorded before, which means Slack re-sent something we handled.
	MarkSeen(key string, at time.Time) (first bool, err error)
	PruneSeen(before time.Time) (int, error)

	Subscriber(userID string) (nudges.Subscriber, error)
	UpdateSubscriber(userID string, fn func(*nudges.Subscriber) error) (nudges.Subscriber, error)
	ForEachSubscriber(fn func(nudges.Subscriber) error) error

	Due(now time.Time, limit int) ([]string, error)
	StartDelivery(d nudges.Delivery, expectNextDue time.Time, advance func(*nudges.Subscriber) error) (created bool, err error)
	// StartDeliveries is StartDelivery for many, in one transaction;
	// each start succeeds or fails on its own.
	StartDeliveries(starts []nudges.DeliveryStart) (created []bool, errs []error)
	RecordMissed(userID string, slots []time.Time, expectNextDue time.Time, advance func(*nudges.Subscriber) error) error
	Delivery(id string) (nudges.Delivery, error)
	UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error)
	RecordOutcome(deliveryID string, fn func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error)
	Pending() ([]nudges.Delivery, error)
	Deliveries(userID string, since time.Time) ([]nudges.Delivery, error)

	// Reflections. Text is sealed at rest by the store; what comes back
	// is plain and must only ever be shown to its author.
	SaveReflection(r nudges.Reflection) (nudges.Reflection, error)
	Reflection(userID string, seq int) (nudges.Reflection, error)
	Reflections(userID string, limit int) ([]nudges.Reflection, error)
	SearchReflections(userID, word string, limit int) ([]nudges.Reflection, error)
	CountReflections(userID string) (int, error)
	UpdateReflection(userID string, seq int, fn func(*nudges.Reflection) error) (nudges.Reflection, error)
	DeleteReflection(userID string, seq int) error
	// Forget destroys the person's data key first, then every record of
	// them; Compact then removes the freed bytes from the file.
	Forget(userID string) error
	Compact() error
	NeedsCompaction() bool

	// Admin tools.
	CountSubscribers() (total, active int, err error)
	DeliveriesBetween(from, to time.Time, fn func(nudges.Delivery) error) error
	PausedAll() (time.Time, error)
	SetPausedAll(until time.Time) error

	// Digests and the clarity pulse.
	DeliveriesFor(userIDs []string, from, to time.Time) ([]nudges.Delivery, error)
	SharedReflections(userIDs []string, from, to time.Time) ([]nudges.Reflection, error)
	LastDigest(channel string) (time.Time, error)
	SetLastDigest(channel string, at time.Time) error
	MarkDigestBroken(channel, reason string) (first bool, err error)
	ClearDigestBroken(channel string) error
	OpenPulse(channel, id string, opened time.Time) error
	VotePulse(id, userID string, score int) (first bool, err error)
	AddHearMore(id, userID, text string) error
	ClosePulse(id string) (nudges.PulseSummary, error)
	PulseHistory(channel string, n int) ([]nudges.PulseSummary, error)
}
