package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/storage"
)

// memDB is a database as a list of records, with reflections that open
// to a text derived from their payload.
type memDB struct {
	recs   []storage.Record
	opened map[string]string // "user/seq" → text, when set: what Reflection returns
}

func (m *memDB) Dump(fn func(storage.Record) error) error {
	for _, r := range m.recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memDB) Reflection(userID string, seq int) (nudges.Reflection, error) {
	for _, r := range m.recs {
		if sr := r.Reflection; sr != nil && sr.Reflection.UserID == userID && sr.Reflection.Seq == seq {
			out := sr.Reflection
			out.Text = string(sr.Sealed) // stands in for opening it
			if t, ok := m.opened[fmt.Sprintf("%s/%d", userID, seq)]; ok {
				out.Text = t
			}
			return out, nil
		}
	}
	return nudges.Reflection{}, nudges.ErrNotFound
}

// memTarget collects what it is given, passing each record through edit.
type memTarget struct {
	memDB
	edit     func(storage.Record) (storage.Record, bool)
	finished bool
}

func (m *memTarget) Add(r storage.Record) error {
	if m.edit != nil {
		var keep bool
		if r, keep = m.edit(r); !keep {
			return nil
		}
	}
	m.recs = append(m.recs, r)
	return nil
}

func (m *memTarget) Finish() error { m.finished = true; return nil }

func source(people, reflections int) *memDB {
	db := &memDB{recs: []storage.Record{{Settings: &storage.Settings{LearnedPace: 12}}}}
	for i := range people {
		db.recs = append(db.recs, storage.Record{Subscriber: &nudges.Subscriber{UserID: fmt.Sprintf("U%03d", i), Subscribed: true}})
	}
	for i := range reflections {
		db.recs = append(db.recs, storage.Record{Reflection: &storage.SealedReflection{
			Reflection: nudges.Reflection{UserID: fmt.Sprintf("U%03d", i%people), Seq: 1 + i/people},
			DataKey:    "dk", Sealed: []byte(fmt.Sprintf("sealed-%d", i)),
		}})
	}
	return db
}

// Ensure Migrate copies every record, verifies the copy by kind and by
// content, opens the sample on both sides, and refuses a copy that
// lost, changed or opens differently any record.
func TestMigrateVerifies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		sample int
		edit   func(storage.Record) (storage.Record, bool)
		opened map[string]string
		want   string // in the error; "" for success
	}{
		{name: "equal", sample: 100},
		{name: "sample smaller than the reflections", sample: 7},
		{name: "a record lost", sample: 100, want: "subscribers (10 in the source, 9 in the copy)",
			edit: func(r storage.Record) (storage.Record, bool) {
				return r, r.Subscriber == nil || r.Subscriber.UserID != "U004"
			}},
		{name: "a record doubled", sample: 100, want: "subscribers",
			edit: func(r storage.Record) (storage.Record, bool) {
				if r.Subscriber != nil && r.Subscriber.UserID == "U001" {
					r.Subscriber = &nudges.Subscriber{UserID: "U004", Subscribed: true}
				}
				return r, true
			}},
		{name: "a byte of ciphertext changed", sample: 0, want: "reflections (30 in the source, 30 in the copy)",
			edit: func(r storage.Record) (storage.Record, bool) {
				if sr := r.Reflection; sr != nil && string(sr.Sealed) == "sealed-17" {
					c := *sr
					c.Sealed = []byte("sealed-18")
					r.Reflection = &c
				}
				return r, true
			}},
		{name: "a setting changed", sample: 100, want: "settings",
			edit: func(r storage.Record) (storage.Record, bool) {
				if r.Settings != nil {
					r.Settings = &storage.Settings{LearnedPace: 13}
				}
				return r, true
			}},
		{name: "opens differently", sample: 1000, want: "opens in both, but differently",
			opened: map[string]string{"U003/2": "not what was written"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := source(10, 30)
			dst := &memTarget{edit: tt.edit}
			dst.opened = tt.opened
			sum, err := Migrate(ctx, src, dst, tt.sample, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				if sum.Source.Total() != 41 || sum.Target.Total() != 41 || sum.Reflections != 30 || sum.Opened != min(tt.sample, 30) || !dst.finished {
					t.Errorf("summary %+v, finished %v", sum, dst.finished)
				}
				var out strings.Builder
				sum.Report(&out)
				if !strings.Contains(out.String(), "subscribers                    10           10") {
					t.Errorf("report:\n%s", out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrMigrateMismatch) {
				t.Errorf("Migrate: %v; want ErrMigrateMismatch naming %q", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(err), "not what was written") || strings.Contains(fmt.Sprint(err), "sealed-") {
				t.Errorf("the error quotes a reflection: %v", err)
			}
		})
	}
}

// Ensure a cancelled context stops the copy.
func TestMigrateStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := &memTarget{}
	if _, err := Migrate(ctx, source(3000, 0), dst, 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Migrate with a cancelled context: %v", err)
	}
	if dst.finished {
		t.Error("the target was finished after the copy stopped")
	}
}
