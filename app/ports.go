package app

import (
	"context"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
)

// The ports below are what the core needs from the outside world, one per
// aggregate, each declared here where it is used. storage.DB satisfies
// the storage ports; bot implements Messenger with slack-go.
//
// Methods taking a func run it inside the storage transaction: those
// funcs must be pure (no I/O, no locks), and may run more than once.

// Subscribers keeps each person's settings and their place in the due
// index.
type Subscribers interface {
	Subscriber(userID string) (nudges.Subscriber, error)
	// SubscribersByID reads many people's records at once; those with
	// none are left out.
	SubscribersByID(userIDs []string) (map[string]nudges.Subscriber, error)
	// UpdateSubscriber creates the record if needed.
	UpdateSubscriber(userID string, fn func(*nudges.Subscriber) error) (nudges.Subscriber, error)
	ForEachSubscriber(fn func(nudges.Subscriber) error) error
	// Due lists up to limit people whose next due time is not after now,
	// earliest first.
	Due(now time.Time, limit int) ([]string, error)
	// OldestDue is the earliest due time in the index; false when nobody
	// is scheduled.
	OldestDue() (time.Time, bool, error)
	CountSubscribers() (total, active int, err error)
}

// Settings are the company-wide switches admins set in Slack.
type Settings interface {
	PausedAll() (time.Time, error)
	SetPausedAll(until time.Time) error
	// StrategyLines are the lines admins set; set is false while they
	// never did.
	StrategyLines() (lines []string, set bool, err error)
	SetStrategyLines(lines []string) error
}

// Deliveries keeps every nudge sent or due, and the outbox of those not
// yet confirmed by Slack.
type Deliveries interface {
	// StartDelivery records d as pending and, in the same transaction,
	// advances the person's due time if it still equals expectNextDue;
	// created is false when the slot was recorded before.
	StartDelivery(d nudges.Delivery, expectNextDue time.Time, advance func(*nudges.Subscriber) error) (created bool, err error)
	// StartDeliveries is StartDelivery for many, in one shared
	// transaction; created[i] and errs[i] answer starts[i].
	StartDeliveries(starts []nudges.DeliveryStart) (created []bool, errs []error)
	RecordMissed(userID string, slots []time.Time, expectNextDue time.Time, advance func(*nudges.Subscriber) error) error
	Delivery(id string) (nudges.Delivery, error)
	UpdateDelivery(id string, fn func(*nudges.Delivery) error) (nudges.Delivery, error)
	// UpdateDeliveryFrom is UpdateDelivery for a caller holding the
	// delivery as it was stored (known): where the store can, fn runs on
	// known and the result is saved in one write if nothing changed
	// since; otherwise fn runs on what is stored, as UpdateDelivery's.
	UpdateDeliveryFrom(known nudges.Delivery, fn func(*nudges.Delivery) error) (nudges.Delivery, error)
	// RecordOutcome changes a delivery and its person together.
	RecordOutcome(deliveryID string, fn func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error)
	Pending() ([]nudges.Delivery, error)
	Deliveries(userID string, since time.Time) ([]nudges.Delivery, error)
	DeliveriesBetween(from, to time.Time, fn func(nudges.Delivery) error) error
	DeliveriesFor(userIDs []string, from, to time.Time) ([]nudges.Delivery, error)
}

// Reflections keeps each person's journal, sealed at rest by the store:
// what comes back is plain text that only its author may ever see.
type Reflections interface {
	SaveReflection(r nudges.Reflection) (nudges.Reflection, error)
	Reflection(userID string, seq int) (nudges.Reflection, error)
	Reflections(userID string, limit int) ([]nudges.Reflection, error)
	SearchReflections(userID, word string, limit int) ([]nudges.Reflection, error)
	CountReflections(userID string) (int, error)
	UpdateReflection(userID string, seq int, fn func(*nudges.Reflection) error) (nudges.Reflection, error)
	DeleteReflection(userID string, seq int) error
	// SharedReflections are those their authors chose to share, written
	// in [from, to) by the given people.
	SharedReflections(userIDs []string, from, to time.Time) ([]nudges.Reflection, error)
	// DueFollowUp is the person's oldest commitment due to be quoted
	// back by now, found through the follow-up index.
	DueFollowUp(userID string, now time.Time) (r nudges.Reflection, found bool, err error)
	// DueFollowUpsOf is DueFollowUp for many people at once; those with
	// none due are left out.
	DueFollowUpsOf(userIDs []string, now time.Time) (map[string]nudges.Reflection, error)
	// ReflectionByMessage is the reflection typed as the Slack message
	// ts in the person's DM; nudges.ErrNotFound when there is none.
	ReflectionByMessage(userID, ts string) (nudges.Reflection, error)
}

// Exporter walks every record kept about a person, naming those it
// cannot open instead of skipping them.
type Exporter interface {
	ExportPerson(userID string, fn func(nudges.PersonRecord) error) error
}

// Digests keeps when each channel last had its digest, and the clarity
// pulses.
type Digests interface {
	// PostedDigest is the channel's last digest; zero if none yet.
	PostedDigest(channel string) (nudges.PostedDigest, error)
	RecordDigest(channel string, p nudges.PostedDigest) error
	MarkDigestBroken(channel, reason string) (first bool, err error)
	ClearDigestBroken(channel string) error
	// OpenPulse opens a pulse that only voters (the channel's members
	// as it is posted) may answer.
	OpenPulse(channel, id string, opened time.Time, voters ...string) error
	// PulseVoters are who may answer an open pulse; snapshot is false
	// for a pulse opened before they were kept.
	PulseVoters(id string) (voters []string, snapshot bool, err error)
	VotePulse(id, userID string, score int) (first bool, err error)
	AddHearMore(id, userID, text string) error
	ClosePulse(id string) (nudges.PulseSummary, error)
	PulseHistory(channel string, n int) ([]nudges.PulseSummary, error)
}

// Eraser deletes a person and gives the freed space back.
type Eraser interface {
	// Forget destroys the person's data key first, then every record of
	// them.
	Forget(userID string) error
	// NeedsCompaction says whether Compact is worth its pause: only a
	// file from before storage's secrets file may still need one.
	NeedsCompaction() bool
	Compact() error
}

// Housekeeping is storage's hourly clean-up, which the scheduler runs.
type Housekeeping interface {
	// ApplyRetention removes what is older than storage.retention
	// (deliveries, closed pulses, handled envelopes) in small
	// transactions, and logs what it removed.
	ApplyRetention(now time.Time) (removed int, err error)
	// PruneSeen forgets the Socket Mode envelopes handled before before.
	PruneSeen(before time.Time) (int, error)
}

// Profile is what Slack says about a person.
type Profile struct {
	TZ          string // IANA zone, "" when unknown
	Deleted     bool
	DisplayName string
}

// Channel is what Slack says about a channel.
type Channel struct {
	Name     string
	Archived bool
	Members  []string
}

// NudgeMessage is everything a nudge DM shows; the messenger renders it.
type NudgeMessage struct {
	Nudge nudges.Nudge
	// Wording is the nudge as this person reads it: with a fallback when
	// they may lack the setting it assumes, a strategy line quoted.
	Wording  nudges.Wording
	Delivery nudges.Delivery
	Location *time.Location
	// FollowUp, when set, is a commitment of the person's to quote back.
	FollowUp *nudges.Reflection
}

// Messenger is what the core needs from Slack. Errors are classified with
// the helpers in errors.go.
type Messenger interface {
	OpenDM(ctx context.Context, userID string) (channel string, err error)
	// PostNudge posts m into the DM carrying the delivery id and round,
	// so FindNudge can tell later whether it arrived. beforeSend runs
	// after any rate-limit wait, right before the request leaves; if it
	// fails, nothing is sent.
	PostNudge(ctx context.Context, channel string, m NudgeMessage, beforeSend func() error) (ts string, err error)
	UpdateNudge(ctx context.Context, channel, ts string, m NudgeMessage) error
	// FindNudge looks for the delivery's message of the given round in
	// the DM, posted at or after since.
	FindNudge(ctx context.Context, channel, deliveryID string, round int, since time.Time) (ts string, found bool, err error)
	Profile(ctx context.Context, userID string) (Profile, error)
	Channel(ctx context.Context, channel string) (Channel, error)
	// PostDigest posts d, in as many messages as it takes; beforeSend
	// runs right before each leaves, as PostNudge's.
	PostDigest(ctx context.Context, channel, name string, d nudges.Digest, pulseID string, beforeSend func() error) error
	// PostPulse posts the clarity pulse question with its buttons;
	// beforeSend as PostDigest's.
	PostPulse(ctx context.Context, channel, pulseID string, beforeSend func() error) error
	PostUpdate(ctx context.Context, channel, authorID, text string) error
	// TellAboutDigest tells one person, in their DM, something about a
	// digest run that concerns them alone.
	TellAboutDigest(ctx context.Context, userID string, note DigestNote) error
}

// DigestNote is what a person is told about a channel's digest run:
// either Broken, Slack's code, to an admin who must act before it can be
// posted, or HeldBack, the seq of the person's anonymous reflection the
// digest left out because too few people take part in it.
type DigestNote struct {
	Channel  string
	Broken   string
	HeldBack int
}

// Leader says whether this replica may still do the leader's work:
// post the due nudges and the digests. When several replicas share one
// database only one leads at a time (app/scheduler elects it through the
// store); a database only one process opens is always led by it.
type Leader interface {
	// Leading returns nil while this replica's term as leader lasts by
	// its own monotonic clock, and an error wrapping ErrNotLeader once it
	// may have ended. It is asked right before each post leaves, so it
	// must be cheap and must not block.
	Leading() error
}

// Replicas are the other processes sharing the database, if any.
type Replicas interface {
	// WakeLeader wakes the due loop of whichever replica leads, as a
	// local change wakes this one's: a schedule changed on a replica
	// that does not lead would otherwise wait for the leader's next
	// look. Best effort: a wake lost costs at most the leader's tick.
	WakeLeader()
}

// Observer hears what the core did, for metrics. Every method must be
// cheap and must not block.
type Observer interface {
	// Ticked is called at the end of every scheduler tick with how late
	// the oldest delivery it handed to the senders was.
	Ticked(lag time.Duration)
	// Delivered counts a delivery outcome: sent, missed, uncertain,
	// retry, failed_<reason>.
	Delivered(outcome string)
}

type nopObserver struct{}

func (nopObserver) Ticked(time.Duration) {}
func (nopObserver) Delivered(string)     {}
