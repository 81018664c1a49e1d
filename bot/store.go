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
	RecordMissed(userID string, slots []time.Time, expectNextDue time.Time, advance func(*nudges.Subscriber) error) error
	Delivery(id string) (nudges.Delivery, error)
	UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error)
	RecordOutcome(deliveryID string, fn func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error)
	Pending() ([]nudges.Delivery, error)
	Deliveries(userID string, since time.Time) ([]nudges.Delivery, error)
}
