// Package nudges is nudgebot's domain: the catalog of nudges, how the next
// one is chosen for a person, when each person is due, and what a delivery
// is. It knows nothing of Slack or of bbolt; the adapters in bot/ and
// storage/ depend on it, never the other way round.
package nudges
