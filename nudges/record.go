package nudges

import "fmt"

// PersonRecord is one thing kept about a person, as a walk over everything
// stored hands it out: exactly one field is set. It lets an export see
// every kind of record through one callback, and say which record it
// could not open instead of losing it without a word.
type PersonRecord struct {
	Subscriber *Subscriber
	Delivery   *Delivery
	Reflection *Reflection
	Unreadable *Unreadable
}

// Kind names what the record is: "subscriber", "delivery", "reflection",
// or for an unreadable one the kind it would have been.
func (r PersonRecord) Kind() string {
	switch {
	case r.Subscriber != nil:
		return KindSubscriber
	case r.Delivery != nil:
		return KindDelivery
	case r.Reflection != nil:
		return KindReflection
	case r.Unreadable != nil:
		return r.Unreadable.Kind
	}
	return ""
}

// The kinds of records a person owns.
const (
	KindSubscriber = "subscriber"
	KindDelivery   = "delivery"
	KindReflection = "reflection"
)

// UnreadableReason says why a stored record could not be opened.
type UnreadableReason string

const (
	// UnreadableNoKey: the key that seals the record is not configured.
	UnreadableNoKey UnreadableReason = "no key"
	// UnreadableDamaged: the record does not decode or decrypt.
	UnreadableDamaged UnreadableReason = "damaged"
)

// Unreadable names a record that exists but could not be opened. Nothing
// in it quotes what the record says.
type Unreadable struct {
	Kind   string
	UserID string // empty if even the key is damaged
	Seq    int    // reflections only
	ID     string // deliveries: the delivery id; otherwise a damaged key, in hex
	Reason UnreadableReason
	Detail string // the error, for the operator
}

// Name identifies the record for a person or an operator: "reflection 3
// of U123", "delivery U123-20260302T090000Z", "subscriber of U123".
func (u Unreadable) Name() string {
	switch {
	case u.Kind == KindReflection && u.UserID != "":
		return fmt.Sprintf("reflection %d of %s", u.Seq, u.UserID)
	case u.Kind == KindDelivery && u.ID != "":
		return "delivery " + u.ID
	case u.UserID != "":
		return u.Kind + " of " + u.UserID
	}
	return u.Kind + " with key " + u.ID
}
