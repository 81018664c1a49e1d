package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
	"github.com/nudgebot/nudgebot/storage"
)

// The attacks of issue 10 that storage, operations and the emulator
// answer, each played end to end through the real wiring.

const tamperMarker = "quokka-semaphore"

func init() { privateMarkers = append(privateMarkers, tamperMarker) }

// forget runs /nudge forget and confirms it, as a person would.
func (h *harness) forget(user string) {
	h.t.Helper()
	before := 0
	for _, m := range h.emu.Ephemerals(user) {
		if strings.Contains(m.VisibleText(), "is deleted") {
			before++
		}
	}
	if _, err := h.emu.SlashCommand(h.ctx(), user, "", "/nudge", "forget"); err != nil {
		h.t.Fatal(err)
	}
	var prompt slackemu.Message
	err := h.emu.WaitFor(h.ctx(), func() bool {
		for _, m := range h.emu.Ephemerals(user) {
			if _, ok := m.Button("forget_confirm"); ok {
				prompt = m
			}
		}
		return prompt.TS != ""
	})
	if err != nil {
		h.t.Fatalf("no forget prompt: %v", err)
	}
	yes, _ := prompt.Button("forget_confirm")
	if _, err := h.emu.ClickButton(h.ctx(), user, prompt, "forget_confirm", yes.Value); err != nil {
		h.t.Fatal(err)
	}
	h.waitEphemerals(user, "is deleted", before+1)
}

// waitEphemerals waits until user has seen n ephemerals containing s.
func (h *harness) waitEphemerals(user, s string, n int) {
	h.t.Helper()
	count := func() int {
		c := 0
		for _, m := range h.emu.Ephemerals(user) {
			if strings.Contains(m.VisibleText(), s) {
				c++
			}
		}
		return c
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool { return count() >= n }); err != nil {
		h.t.Fatalf("%s saw %d answers with %q, want %d", user, count(), s, n)
	}
}

// Ensure voting, forgetting oneself and voting again counts one vote:
// otherwise one person reaches the three-answer threshold alone and reads
// a single colleague's score from the average.
func TestVoteForgetVote(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben, chloe, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID)
	h.start()
	h.sched.RunDigest(h.ctx(), "CTEAM0001")

	h.clickIn("CTEAM0001", ben.ID, "pulse_vote_5") // the victim
	h.waitEphemerals(ben.ID, "Thanks", 1)
	h.clickIn("CTEAM0001", ana.ID, "pulse_vote_1")
	h.waitEphemerals(ana.ID, "Thanks", 1)
	for round := 1; round <= 2; round++ {
		h.forget(ana.ID)
		h.clickIn("CTEAM0001", ana.ID, "pulse_vote_1")
		h.waitEphemerals(ana.ID, "already answered", round)
	}

	before := len(h.emu.Messages("CTEAM0001"))
	h.clock.Add(7 * 24 * time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	var next strings.Builder
	for _, m := range h.emu.Messages("CTEAM0001")[before:] {
		next.WriteString(m.VisibleText() + "\n")
	}
	if strings.Contains(next.String(), "out of 5") {
		t.Errorf("two people's pulse shows an average, so the attacker's repeat votes counted:\n%s", next.String())
	}
	if !strings.Contains(next.String(), "2 answers.") {
		t.Errorf("want the pulse to count two answers from two people:\n%s", next.String())
	}
}

// Ensure a private reflection whose share flag is flipped in the file,
// by someone who can write it but has no key, never reaches a digest,
// and that the refusal is logged (without the text).
func TestTamperedShareFlagRefused(t *testing.T) {
	h := newHarness(t, withConfig(digestConfig))
	h.addPeople(ana, ben, chloe, boss)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID, ben.ID, chloe.ID)
	h.start()
	for _, p := range []string{ana.ID, ben.ID, chloe.ID} {
		h.nudge(p, "start")
	}
	h.say(ana.ID, "/reflect", "Private worry "+tamperMarker)
	h.stop()

	flipShare(t, h.cfg.Storage.Path, ana.ID, nudges.ShareNamed)
	logsBefore := len(allLogs.String())
	h.start()
	h.clock.Add(time.Hour)
	h.sched.RunDigest(h.ctx(), "CTEAM0001")
	if digest := channelText(h.emu, "CTEAM0001"); strings.Contains(digest, tamperMarker) || strings.Contains(digest, "Private worry") {
		t.Fatalf("the tampered private reflection reached the channel:\n%s", digest)
	}
	if !strings.Contains(channelText(h.emu, "CTEAM0001"), "Team digest") {
		t.Error("the digest was not posted at all: one bad record must not stop it")
	}
	if logs := allLogs.String()[logsBefore:]; !strings.Contains(logs, "seal does not match") {
		t.Error("the refused record was not reported in the log")
	}
	contains(t, h.say(ana.ID, "/reflect", "list"), "couldn't")

	// `nudgebot check`, with the key it finds beside the database, names
	// the record.
	h.stop()
	env := map[string]string{
		config.EnvBotToken: testBotToken, config.EnvAppToken: testAppToken,
		config.EnvAPIURL: h.emu.URL(), config.EnvStoragePath: h.cfg.Storage.Path,
	}
	code, _, stderr := toolEnv(t, env, "check")
	if code == ops.ExitOK || !strings.Contains(stderr, "reflection 1 of "+ana.ID+" does not open") {
		t.Errorf("check: exit %d, stderr %q; want the tampered reflection reported", code, stderr)
	}
	if strings.Contains(stderr, tamperMarker) {
		t.Error("check quoted the reflection")
	}
}

// flipShare rewrites userID's first reflection to share, and adds it to
// the shared index, directly in the file: all a writer without the key
// can do.
func flipShare(t *testing.T, path, userID string, share nudges.Share) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		refls := tx.Bucket([]byte("reflections"))
		prefix := append([]byte(userID), 0)
		k, v := refls.Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("no reflection of %s", userID)
		}
		var rec map[string]any
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		rec["share"] = string(share)
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := refls.Put(bytes.Clone(k), raw); err != nil {
			return err
		}
		created, err := time.Parse(time.RFC3339Nano, rec["created"].(string))
		if err != nil {
			return err
		}
		sk := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(created.UnixNano()))
		sk = append(sk, k[len(prefix):]...)
		return tx.Bucket([]byte("shared_by_person")).Put(sk, []byte{})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Ensure a response_url call that fails with a network error never puts
// the response_url (which lets its holder answer that person for 30
// minutes) in the log, retries included.
func TestResponseURLNeverLogged(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	logsBefore := len(allLogs.String())
	// Two broken connections, then the answer goes through: retries back
	// off for a few seconds, hence the longer wait.
	h.emu.FailNext("response_url", 2, slackemu.FaultDropAfterApply())
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/nudge", "status"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.emu.WaitFor(ctx, func() bool {
		return strings.Count(allLogs.String()[logsBefore:], "slack call failed; retrying") >= 2 && len(h.emu.Ephemerals(ana.ID)) > 0
	})
	if err != nil {
		t.Fatalf("the response_url call was not retried through to an answer: %v", err)
	}
	logs := allLogs.String()[logsBefore:]
	if s := responseURLsInLogs.FindString(logs); s != "" {
		t.Errorf("a response_url reached the log: %q", s)
	}
}

// Ensure /backup, in the wiring `nudgebot run` uses, refuses a request
// without the token or naming a foreign host (DNS rebinding), serves
// `nudgebot backup`, and that a client which stops reading holds neither
// the database nor anyone's work: nudges are still recorded and a
// compaction still runs.
func TestBackupEndpointGuardsAndStalledReader(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	seedBulk(t, h.cfg.Storage.Path, 20_000) // larger than a connection buffers
	addr := freeAddr(t)
	h.cfg.Metrics.Addr = addr
	h.start()
	adm := ops.NewAdmin(ops.AdminConfig{Addr: addr, Version: version}, slog.New(slog.NewTextHandler(io.MultiWriter(&allLogs, testWriter{t}), nil)))
	auth, err := ops.BackupAuthFor(h.cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Start(h.w.Bot, h.w.DB, auth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Stop)
	url := "http://" + addr + "/backup"
	// No deadline of its own: a stalled client may wait forever.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	get := func(host, token string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		name, host, token string
		want              int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", "", "guessed-guessed-guessed-guessed", http.StatusUnauthorized},
		{"foreign Host (DNS rebinding)", "attacker.example:" + strings.Split(addr, ":")[1], auth.Token, http.StatusForbidden},
	} {
		resp := get(c.host, c.token)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || len(body) > 1024 {
			t.Errorf("%s: %d with %d bytes, want %d and no database", c.name, resp.StatusCode, len(body), c.want)
		}
	}

	// The tool finds the token where the bot made it.
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, "storage:\n  path: %q\nmetrics:\n  addr: %q\n", h.cfg.Storage.Path, addr), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	if code, stdout, stderr := tool(t, "backup", "-config", cfgPath, out); code != ops.ExitOK {
		t.Fatalf("nudgebot backup: exit %d\n%s%s", code, stdout, stderr)
	}

	// A client that reads the headers, then nothing.
	stalled := get("", auth.Token)
	defer stalled.Body.Close()
	if stalled.StatusCode != http.StatusOK {
		t.Fatalf("backup with the token: %d", stalled.StatusCode)
	}
	h.nudge(ana.ID, "start")
	h.nudge(ana.ID, "now")
	h.waitDMs(ana.ID, 1)
	compacted := make(chan error, 1)
	go func() { compacted <- h.w.DB.Compact() }()
	select {
	case err := <-compacted:
		if err != nil {
			t.Fatalf("Compact: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a compaction waits for a backup client that stopped reading")
	}
	n, err := io.Copy(io.Discard, stalled.Body)
	if err != nil || n < 1<<20 {
		t.Errorf("the stalled backup, read at last: %d bytes, %v", n, err)
	}
}

// seedBulk writes n subscribers into the database at path before the
// bot opens it.
func seedBulk(t *testing.T, path string, n int) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	subs := make([]nudges.Subscriber, n)
	for i := range subs {
		subs[i] = nudges.Subscriber{UserID: fmt.Sprintf("UBULK%07d", i), Subscribed: true, ProfileTZ: "Europe/Berlin",
			DMChannel: fmt.Sprintf("DBULK%07d", i), NextDue: monday.Add(time.Duration(i) * time.Second)}
	}
	if err := db.ImportSubscribers(subs); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Ensure a team update near the form's 3,000-character limit, full of
// characters that escaping lengthens, is posted whole: real Slack refuses
// a section over 3,000 characters, and so does the emulator.
func TestLongTeamUpdateFits(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.emu.AddChannel("CTEAM0001", "team", ana.ID)
	h.start()
	h.say(ana.ID, "/reflect", "A short note to draft from.")
	if _, err := h.emu.SlashCommand(h.ctx(), ana.ID, "", "/reflect", "list"); err != nil {
		t.Fatal(err)
	}
	var list slackemu.Message
	h.emu.WaitFor(h.ctx(), func() bool {
		for _, m := range h.emu.Ephemerals(ana.ID) {
			if _, ok := m.Button("reflect_draft"); ok {
				list = m
				return true
			}
		}
		return false
	})
	btn, _ := list.Button("reflect_draft")
	if _, err := h.emu.ClickButton(h.ctx(), ana.ID, list, "reflect_draft", btn.Value); err != nil {
		t.Fatal(err)
	}
	modal := h.waitModal(ana.ID)
	const unit = "R&D <team> " // 11 characters, 21 once escaped
	update := strings.Repeat(unit, 270) + "last words"
	if n := len([]rune(update)); n < 2980 || n > 3000 {
		t.Fatalf("the update is %d characters; the test wants 2,980 to 3,000", n)
	}
	if _, err := h.emu.SubmitView(h.ctx(), ana.ID, modal.ID, map[string]map[string]string{
		"update":  {"text": update},
		"channel": {"channel": "CTEAM0001"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.emu.WaitFor(h.ctx(), func() bool { return len(h.emu.Messages("CTEAM0001")) == 1 }); err != nil {
		t.Fatalf("the update was not posted; the author was told: %.120q", h.lastEphemeral(ana.ID))
	}
	got := h.emu.Messages("CTEAM0001")[0].VisibleText()
	if n := strings.Count(got, "R&amp;D &lt;team&gt;"); n != 270 {
		t.Errorf("the post holds %d of the 270 escaped pieces: text was lost", n)
	}
	contains(t, got, "Team update from <@"+ana.ID+">", "last words")
}

// Ensure /reflect list shows a reflection that escaping lengthens past
// the section limit: it was cut to 600 characters and then escaped.
func TestReflectListFitsAfterEscaping(t *testing.T) {
	h := newHarness(t)
	h.addPeople(ana)
	h.start()
	h.say(ana.ID, "/reflect", strings.Repeat("&", 700)+" and <more>")
	got := h.say(ana.ID, "/reflect", "list")
	contains(t, got, "Your latest 1 of 1 reflection", "&amp;&amp;")
}
