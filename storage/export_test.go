package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// describe renders a walked record as one comparable line: its kind, its
// owner, its id, and for a reflection what it says and how it is shared.
func describe(r nudges.PersonRecord) string {
	switch {
	case r.Subscriber != nil:
		return "subscriber " + r.Subscriber.UserID
	case r.Delivery != nil:
		return "delivery " + r.Delivery.ID
	case r.Reflection != nil:
		x := r.Reflection
		s := fmt.Sprintf("reflection %s/%d %q", x.UserID, x.Seq, x.Text)
		if x.Share != nudges.ShareNone {
			s += " shared " + string(x.Share)
		}
		if !x.FollowUpDue.IsZero() {
			s += " follow-up " + x.FollowUpDue.Format("01-02")
		}
		return s
	case r.Unreadable != nil:
		return "unreadable " + r.Unreadable.Name() + ": " + string(r.Unreadable.Reason)
	}
	return "empty record"
}

// walk collects what a walk hands out, described.
func walk(t *testing.T, run func(func(nudges.PersonRecord) error) error) []string {
	t.Helper()
	got := []string{}
	if err := run(func(r nudges.PersonRecord) error {
		got = append(got, describe(r))
		return nil
	}); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return got
}

// seedOwners stores a subscriber with deliveries and a reflection, a
// person with an id that extends theirs, a person who only ever wrote
// reflections (one of them shared, with a follow-up), and a person who
// then asked to be forgotten.
func seedOwners(t *testing.T, db *storage.DB) {
	t.Helper()
	for _, user := range []string{"USUB", "USUB2"} {
		subscribe(t, db, user, base)
		if _, err := db.StartDelivery(pending(user, base), base, setNextDue(base.Add(24*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordMissed("USUB", []time.Time{base.Add(-24 * time.Hour)}, base.Add(24*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	mustSave(t, db, nudges.Reflection{UserID: "USUB", Created: base, Text: "sub note"})
	mustSave(t, db, nudges.Reflection{UserID: "UREFL", Created: base, Text: "only <reflections> & me"})
	mustSave(t, db, nudges.Reflection{UserID: "UREFL", Created: base.Add(time.Hour), Text: "shared one",
		Share: nudges.ShareAnonymous, Commitment: "ask", FollowUpDue: base.Add(72 * time.Hour)})
	seedPerson(t, db, "UGONE", "Quokka7")
	if err := db.Forget("UGONE"); err != nil {
		t.Fatal(err)
	}
}

// Ensure the walk hands out every record people own, of everyone or of
// one person, whether or not they ever subscribed, and nothing of a
// forgotten person.
func TestExport(t *testing.T) {
	db, _ := openSealed(t)
	seedOwners(t, db)
	usub := []string{
		"subscriber USUB",
		"delivery USUB-20260301T090000Z",
		"delivery USUB-20260302T090000Z",
		`reflection USUB/1 "sub note"`,
	}
	refl := []string{
		`reflection UREFL/1 "only <reflections> & me"`,
		`reflection UREFL/2 "shared one" shared anonymous follow-up 03-05`,
	}
	tests := []struct {
		name string
		run  func(func(nudges.PersonRecord) error) error
		want []string
	}{
		{"All", db.ExportAll, []string{
			"subscriber USUB", "subscriber USUB2",
			"delivery USUB-20260301T090000Z", "delivery USUB-20260302T090000Z", "delivery USUB2-20260302T090000Z",
			refl[0], refl[1], usub[3],
		}},
		{"Subscriber", personWalk(db, "USUB"), usub},
		{"IDExtendsAnother", personWalk(db, "USUB2"), []string{"subscriber USUB2", "delivery USUB2-20260302T090000Z"}},
		{"ReflectionsOnly", personWalk(db, "UREFL"), refl},
		{"Forgotten", personWalk(db, "UGONE"), []string{}},
		{"Unknown", personWalk(db, "UNEVER"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := walk(t, tt.run); !slices.Equal(got, tt.want) {
				t.Errorf("walked\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func personWalk(db *storage.DB, userID string) func(func(nudges.PersonRecord) error) error {
	return func(fn func(nudges.PersonRecord) error) error { return db.ExportPerson(userID, fn) }
}

// Ensure a record that cannot be opened is handed out named, with why,
// never skipped and never quoted, and that the walk goes on past it;
// and that people whose Forget is unfinished are left out entirely.
func TestExport_Unreadable(t *testing.T) {
	const marker = "Tapir9"
	tests := []struct {
		name   string
		noKeys bool
		damage func(t *testing.T, tx *bolt.Tx) error
		// secrets damages the secrets file, after damage the main one.
		secrets func(t *testing.T, tx *bolt.Tx) error
		want    []string // U1's records; U2's must come through whole
		detail  string   // what U1's unreadable records say, if anything
	}{
		{
			name:   "Intact",
			damage: func(*testing.T, *bolt.Tx) error { return nil },
			want:   []string{"subscriber U1", "delivery U1-20260302T090000Z", `reflection U1/1 "Tapir9 1"`, `reflection U1/2 "Tapir9 2"`},
		},
		{
			name:   "NoKeyConfigured",
			noKeys: true,
			damage: func(*testing.T, *bolt.Tx) error { return nil },
			want:   []string{"subscriber U1", "delivery U1-20260302T090000Z", "unreadable reflection 1 of U1: no key", "unreadable reflection 2 of U1: no key"},
		},
		{
			name:   "CiphertextFlipped",
			damage: rewriteReflection("U1", 1, func(rec map[string]any) { rec["sealed"] = flipMiddle(rec["sealed"].(string)) }),
			want:   []string{"subscriber U1", "delivery U1-20260302T090000Z", "unreadable reflection 1 of U1: damaged", `reflection U1/2 "Tapir9 2"`},
		},
		{
			name: "RecordNotJSON",
			damage: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte("reflections")).Put(reflectionKey("U1", 2), []byte("{not json"))
			},
			want: []string{"subscriber U1", "delivery U1-20260302T090000Z", `reflection U1/1 "Tapir9 1"`, "unreadable reflection 2 of U1: damaged"},
		},
		{
			name:   "RecordOfAnotherSeq",
			damage: rewriteReflection("U1", 2, func(rec map[string]any) { rec["seq"] = 1 }),
			want:   []string{"subscriber U1", "delivery U1-20260302T090000Z", `reflection U1/1 "Tapir9 1"`, "unreadable reflection 2 of U1: damaged"},
		},
		{
			name:   "DataKeyLost",
			damage: func(*testing.T, *bolt.Tx) error { return nil },
			secrets: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte("datakeys")).Delete([]byte("U1"))
			},
			want:   []string{"subscriber U1", "delivery U1-20260302T090000Z", "unreadable reflection 1 of U1: damaged", "unreadable reflection 2 of U1: damaged"},
			detail: "U1 has no data key",
		},
		{
			name: "SubscriberNotJSON",
			damage: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte("subscribers")).Put([]byte("U1"), []byte("[1"))
			},
			want: []string{"unreadable subscriber of U1: damaged", "delivery U1-20260302T090000Z", `reflection U1/1 "Tapir9 1"`, `reflection U1/2 "Tapir9 2"`},
		},
		{
			name: "DeliveryNotJSON",
			damage: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte(storage.RawRecordsBucket)).Put(storage.RawDeliveryKey(t, "U1-20260302T090000Z"), []byte("nope"))
			},
			want: []string{"subscriber U1", "unreadable delivery U1-20260302T090000Z: damaged", `reflection U1/1 "Tapir9 1"`, `reflection U1/2 "Tapir9 2"`},
		},
		{
			name: "ForgetUnfinished",
			// What Forget's first two steps commit.
			damage: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte("forgetting")).Put([]byte("U1"), mustJSON(t, base))
			},
			secrets: func(t *testing.T, tx *bolt.Tx) error {
				return tx.Bucket([]byte("datakeys")).Delete([]byte("U1"))
			},
			want: []string{},
		},
		{
			name: "ForgetUnfinishedDeliveryNotJSON",
			damage: func(t *testing.T, tx *bolt.Tx) error {
				if err := tx.Bucket([]byte("forgetting")).Put([]byte("U1"), mustJSON(t, base)); err != nil {
					return err
				}
				return tx.Bucket([]byte(storage.RawRecordsBucket)).Put(storage.RawDeliveryKey(t, "U1-20260302T090000Z"), []byte("nope"))
			},
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, keys := openSealed(t)
			for _, user := range []string{"U1", "U2"} {
				subscribe(t, db, user, base)
				if _, err := db.StartDelivery(pending(user, base), base, setNextDue(base.Add(24*time.Hour))); err != nil {
					t.Fatal(err)
				}
				for i := 1; i <= 2; i++ {
					mustSave(t, db, nudges.Reflection{UserID: user, Text: fmt.Sprintf("%s %d", marker, i)})
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, db.Path(), func(tx *bolt.Tx) error { return tt.damage(t, tx) })
			if tt.secrets != nil {
				rawUpdate(t, storage.SecretsPath(db.Path()), func(tx *bolt.Tx) error { return tt.secrets(t, tx) })
			}
			opts := storage.Options{ReadOnly: true, Keys: keys}
			if tt.noKeys {
				opts.Keys = nil
			}
			ro, err := storage.Open(db.Path(), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ro.Close() })

			var details []string
			all := walk(t, func(fn func(nudges.PersonRecord) error) error {
				return ro.ExportAll(func(r nudges.PersonRecord) error {
					if u := r.Unreadable; u != nil {
						details = append(details, u.Detail)
						if u.Detail == "" {
							t.Errorf("%s: no detail says why", u.Name())
						}
						if u.UserID == "U1" && !strings.Contains(u.Detail, tt.detail) {
							t.Errorf("%s: detail %q, want it to say %q", u.Name(), u.Detail, tt.detail)
						}
					}
					return fn(r)
				})
			})
			one := walk(t, personWalk(ro, "U1"))
			if !slices.Equal(one, tt.want) {
				t.Errorf("ExportPerson(U1) walked\n%s\nwant\n%s", strings.Join(one, "\n"), strings.Join(tt.want, "\n"))
			}
			var u2 []string
			for _, d := range all {
				if strings.Contains(d, "U2") {
					u2 = append(u2, d)
				}
			}
			wantU2 := []string{"subscriber U2", "delivery U2-20260302T090000Z", `reflection U2/1 "Tapir9 1"`, `reflection U2/2 "Tapir9 2"`}
			if tt.noKeys {
				wantU2 = []string{"subscriber U2", "delivery U2-20260302T090000Z", "unreadable reflection 1 of U2: no key", "unreadable reflection 2 of U2: no key"}
			}
			if !slices.Equal(u2, wantU2) {
				t.Errorf("ExportAll walked U2 as\n%s\nwant\n%s", strings.Join(u2, "\n"), strings.Join(wantU2, "\n"))
			}
			if got := len(all) - len(u2); got != len(tt.want) {
				t.Errorf("ExportAll walked %d records of U1, want %d: %q", got, len(tt.want), all)
			}
			if strings.Contains(strings.Join(details, " "), marker) {
				t.Errorf("an unreadable record's detail quotes the reflection: %q", details)
			}
		})
	}
}

// reflectionKey is storage's key for user's reflection seq.
func reflectionKey(user string, seq int) []byte {
	k := append([]byte(user), 0, 0, 0, 0, 0, 0, 0, 0, 0)
	k[len(k)-1] = byte(seq)
	return k
}

// rewriteReflection changes user's stored reflection seq as JSON.
func rewriteReflection(user string, seq int, change func(map[string]any)) func(*testing.T, *bolt.Tx) error {
	return func(t *testing.T, tx *bolt.Tx) error {
		b := tx.Bucket([]byte("reflections"))
		k := reflectionKey(user, seq)
		var rec map[string]any
		if err := json.Unmarshal(b.Get(k), &rec); err != nil {
			return err
		}
		change(rec)
		return b.Put(k, mustJSON(t, rec))
	}
}

// flipMiddle changes one character of base64 text in its middle.
func flipMiddle(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// Ensure an error from fn stops the walk and comes back as it was, and
// that an id storage cannot key by is refused.
func TestExport_Stops(t *testing.T) {
	db, _ := openSealed(t)
	seedOwners(t, db)
	stop := errors.New("stop here")
	var n int
	err := db.ExportAll(func(nudges.PersonRecord) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("ExportAll with fn failing at 3: err=%v after %d records, want %v after 3", err, n, stop)
	}
	for _, bad := range []string{"", "U\x001"} {
		if err := db.ExportPerson(bad, func(nudges.PersonRecord) error { return nil }); err == nil {
			t.Errorf("ExportPerson(%q) succeeded", bad)
		}
	}
	if err := db.ExportPerson("USUB", func(nudges.PersonRecord) error { return stop }); err != stop {
		t.Errorf("ExportPerson with fn failing: err=%v, want %v", err, stop)
	}
}
