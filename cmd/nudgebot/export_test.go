package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
)

// ownersSite is a database holding a subscriber, a person who only ever
// wrote reflections (one shared), and a person who was forgotten, sealed
// with the key file nudgebot keeps beside the database by default.
type ownersSite struct {
	opsSite
	want map[string]string // "kind user [seq|id]" → the record as JSON
}

const (
	goneUser = "UGONEFOREVER"
	goneText = "Wombat3"
)

func newOwnersSite(t *testing.T) (ownersSite, *storage.DB) {
	t.Helper()
	site := ownersSite{opsSite: newOpsSite(t, ""), want: map[string]string{}}
	keys, err := storage.LoadKeys(nil, "", site.db, nil) // creates nudgebot.key beside the database
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(site.db, storage.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	save := func(r nudges.Reflection) {
		t.Helper()
		got, err := db.SaveReflection(r)
		if err != nil {
			t.Fatal(err)
		}
		site.want[fmt.Sprintf("reflection %s %d", got.UserID, got.Seq)] = mustJSON(t, got)
	}
	sub := seed(t, db, "USUB", 1)[0]
	save(nudges.Reflection{UserID: sub, Created: opsBase, Text: "the subscriber's note <b>&</b>"})
	s, err := db.Subscriber(sub)
	if err != nil {
		t.Fatal(err)
	}
	site.want["subscriber "+sub] = mustJSON(t, s)
	ds, err := db.Deliveries(sub, time.Time{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Deliveries(%s)=%d, %v", sub, len(ds), err)
	}
	site.want["delivery "+sub+" "+ds[0].ID] = mustJSON(t, ds[0])

	// Never subscribed, never got a nudge: only /reflect.
	save(nudges.Reflection{UserID: "UREFLONLY", Created: opsBase, Text: "wrote without subscribing"})
	save(nudges.Reflection{UserID: "UREFLONLY", Created: opsBase.Add(time.Hour), Text: "shared with the team",
		Commitment: "restate the goal", Share: nudges.ShareNamed, FollowUpDue: opsBase.Add(72 * time.Hour)})

	gone := seed(t, db, goneUser, 1)[0]
	for i := range 2 {
		if _, err := db.SaveReflection(nudges.Reflection{UserID: gone, Created: opsBase, Text: fmt.Sprintf("%s %d", goneText, i), Share: nudges.ShareAnonymous}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Forget(gone); err != nil {
		t.Fatal(err)
	}
	return site, db
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exportedRecords reads an export back as "kind user [seq|id]" → the
// record's own JSON, without its kind.
func exportedRecords(t *testing.T, data []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var head struct {
			Kind   string `json:"kind"`
			UserID string `json:"user_id"`
			Seq    int    `json:"seq"`
			ID     string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, sc.Text())
		}
		var rec any
		switch head.Kind {
		case nudges.KindSubscriber:
			rec = &nudges.Subscriber{}
		case nudges.KindDelivery:
			rec = &nudges.Delivery{}
		case nudges.KindReflection:
			rec = &nudges.Reflection{}
		default:
			t.Fatalf("line of unknown kind %q: %s", head.Kind, sc.Text())
		}
		if err := json.Unmarshal(sc.Bytes(), rec); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSpace(fmt.Sprintf("%s %s %s", head.Kind, head.UserID, head.ID))
		if head.Kind == nudges.KindReflection {
			name = fmt.Sprintf("%s %s %d", head.Kind, head.UserID, head.Seq)
		}
		if _, dup := got[name]; dup {
			t.Errorf("%s exported twice", name)
		}
		got[name] = mustJSON(t, rec)
	}
	return got
}

// Ensure export writes every record of a subscriber, of a person who
// only ever used /reflect and of a shared reflection, each exactly as
// stored, and nothing at all of a forgotten person: not their id, not
// their words. The key is the file kept beside the database, found
// without being configured.
func TestExport_EveryOwner(t *testing.T) {
	for _, running := range []bool{false, true} {
		t.Run(map[bool]string{false: "Stopped", true: "FromRunningBot"}[running], func(t *testing.T) {
			site, db := newOwnersSite(t)
			if running {
				rewriteAddr(t, site.opsSite, serveBackups(t, db))
			} else if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "export.jsonl")
			code, stdout, stderr := tool(t, "export", "-config", site.cfg, "-o", out, "-strict")
			if code != ops.ExitOK {
				t.Fatalf("export: exit %d\nstderr: %s", code, stderr)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := exportedRecords(t, data)
			for name, want := range site.want {
				if got[name] != want {
					t.Errorf("%s exported as\n%s\nwant\n%s", name, got[name], want)
				}
			}
			for name := range got {
				if _, ok := site.want[name]; !ok {
					t.Errorf("exported %s, which was not stored", name)
				}
			}
			if bytes.Contains(data, []byte(goneUser)) || bytes.Contains(data, []byte(goneText)) {
				t.Errorf("the export holds the forgotten person:\n%s", data)
			}
			if strings.Contains(stdout+stderr, goneUser) || strings.Contains(stdout+stderr, goneText) {
				t.Errorf("the output names the forgotten person: %q", stdout+stderr)
			}
			want := "exported 1 subscriber, 1 delivery and 3 reflections to " + out + "; nothing was left out\n"
			if !strings.HasSuffix(stderr, want) {
				t.Errorf("stderr=%q\nwant it to end %q", stderr, want)
			}
		})
	}
}

// damageReflection flips a byte of the sealed text of user's reflection
// seq in the closed database at path, so it no longer decrypts.
func damageReflection(t *testing.T, path, user string, seq int) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("reflections"))
		k := binary.BigEndian.AppendUint64(append([]byte(user), 0), uint64(seq))
		var rec map[string]any
		if err := json.Unmarshal(b.Get(k), &rec); err != nil {
			return err
		}
		var sealed []byte
		if err := json.Unmarshal([]byte(mustJSON(t, rec["sealed"])), &sealed); err != nil {
			return err
		}
		sealed[len(sealed)/2] ^= 1
		rec["sealed"] = sealed
		return b.Put(k, []byte(mustJSON(t, rec)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure a reflection that cannot be opened is left out by name, never
// silently: named on its own line and in the closing line, which counts
// it, and -strict then makes the exit status 1 while the rest is still
// written. Without any key, every reflection is counted as having none.
func TestExport_LeftOut(t *testing.T) {
	tests := []struct {
		name    string
		key     bool
		damage  bool
		strict  bool
		code    int
		written int // reflection lines
		notes   []string
	}{
		{name: "Damaged", key: true, damage: true, code: ops.ExitOK, written: 2, notes: []string{
			"nudgebot export: left out reflection 2 of U000000: ",
			"and 2 reflections to OUT; left out 1 record: 1 damaged, failing to decrypt or decode (reflection 2 of U000000)\n",
		}},
		{name: "DamagedStrict", key: true, damage: true, strict: true, code: ops.ExitFailed, written: 2, notes: []string{
			"left out 1 record: 1 damaged, failing to decrypt or decode (reflection 2 of U000000)\n",
			"nudgebot export: -strict: 1 record was left out\n",
		}},
		{name: "NoKeyStrict", strict: true, code: ops.ExitFailed, written: 0, notes: []string{
			"reflections were left out: no key is configured to open them",
			"and 0 reflections to OUT; left out 3 records: 3 reflections with no key to open them\n",
			"nudgebot export: -strict: 3 records were left out\n",
		}},
		{name: "IntactStrict", key: true, strict: true, code: ops.ExitOK, written: 3, notes: []string{
			"and 3 reflections to OUT; nothing was left out\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := newReflectionSite(t)
			if tt.damage {
				damageReflection(t, site.db, site.people[0], 2)
			}
			env := map[string]string{}
			if tt.key {
				env[storage.EnvSecretKey] = site.key
			}
			out := filepath.Join(t.TempDir(), "export.jsonl")
			args := []string{"export", "-config", site.cfg, "-o", out}
			if tt.strict {
				args = append(args, "-strict")
			}
			code, _, stderr := toolEnv(t, env, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			for _, note := range tt.notes {
				if note = strings.ReplaceAll(note, "OUT", out); !strings.Contains(stderr, note) {
					t.Errorf("stderr=%q\nwant %q", stderr, note)
				}
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("the export was not written: %v", err)
			}
			var refl []string
			for name := range exportedRecords(t, data) {
				if strings.HasPrefix(name, nudges.KindReflection) {
					refl = append(refl, name)
				}
			}
			if len(refl) != tt.written {
				t.Errorf("wrote reflections %q, want %d", refl, tt.written)
			}
			if tt.damage && slices.Contains(refl, "reflection "+site.people[0]+" 2") {
				t.Error("the damaged reflection was written")
			}
			if !tt.key && strings.Contains(string(data)+stderr, reflectionMarker) {
				t.Error("reflection text reached the output without the key")
			}
		})
	}
}

// Ensure /reflect export, which walks one person's records the way the
// operator's export walks everyone's, sends what it can read and tells
// the person how much it could not, instead of failing or hiding it.
func TestReflectExport_LeftOut(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	for _, n := range []string{"First", "Second", "Third"} {
		h.say(ana.ID, "/reflect", n+" note "+marker)
	}
	h.stop()
	damageReflection(t, h.cfg.Storage.Path, ana.ID, 1)
	h.start()
	contains(t, h.say(ana.ID, "/reflect", "export"), "Sent to your DMs", "2 reflections", "1 of your records could not be read")
	var ex struct {
		Reflections []struct {
			Seq  int
			Text string
		}
	}
	for _, f := range h.emu.Files(ana.ID) {
		if strings.HasSuffix(f.Name, ".json") {
			if err := json.Unmarshal(f.Content, &ex); err != nil {
				t.Fatalf("export JSON: %v", err)
			}
		}
	}
	var got []string
	for _, r := range ex.Reflections {
		got = append(got, fmt.Sprintf("%d %s", r.Seq, r.Text))
	}
	// Oldest first: the export is written as the records are walked.
	if want := []string{"2 Second note " + marker, "3 Third note " + marker}; !slices.Equal(got, want) {
		t.Errorf("export JSON reflections = %q, want %q: oldest first, the damaged one left out", got, want)
	}
}
