package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Writes while the background check runs: people save reflections on a
// steady cadence from the moment the bot is connected until the check's
// verdict, and each is timed from the command to its visible answer.
const (
	writeEvery   = 250 * time.Millisecond
	writeWindow  = 60 * time.Second // at most this long after connecting
	writeAtLeast = 5                // sent even when the check is over first
	writeWait    = 2 * time.Minute  // for one command's ack and answer
	// writeSaved starts the answer to `/reflect TEXT` once it is saved.
	writeSaved = "Saved privately"
)

// writeResult is one `/reflect TEXT`: how long the person waited for its
// answer, or what went wrong instead.
type writeResult struct {
	Took  time.Duration
	Err   string // "" when answered with writeSaved
	After bool   // sent after the check's verdict, so that there are samples at all
}

// writeStats is what the start-up table shows of the writes.
type writeStats struct {
	Sent     int
	Answered summary // of the answered ones
	Errors   int
	FirstErr string
	After    int  // of Sent, how many went after the verdict
	Capped   bool // sending stopped at writeWindow with the check still running
}

// summarizeWrites sorts out answered writes from failed ones.
func summarizeWrites(rs []writeResult, capped bool) writeStats {
	st := writeStats{Sent: len(rs), Capped: capped}
	var took []time.Duration
	for _, r := range rs {
		if r.After {
			st.After++
		}
		if r.Err != "" {
			if st.Errors == 0 {
				st.FirstErr = r.Err
			}
			st.Errors++
			continue
		}
		took = append(took, r.Took)
	}
	st.Answered = summarize(took)
	return st
}

// cells are the table's three columns: how many were answered (and what
// else happened), p50 and max.
func (w writeStats) cells() (count, p50, worst string) {
	if w.Sent == 0 {
		return "—", "—", "—"
	}
	count = fmt.Sprint(w.Answered.N)
	var extra []string
	if w.Errors > 0 {
		extra = append(extra, fmt.Sprintf("%d of %d failed: %s", w.Errors, w.Sent, clip(w.FirstErr, 60)))
	}
	if w.After > 0 {
		extra = append(extra, fmt.Sprintf("%d sent after the check", w.After))
	}
	if w.Capped {
		extra = append(extra, fmt.Sprintf("stopped at %.0f s, check still running", writeWindow.Seconds()))
	}
	if len(extra) > 0 {
		count += " (" + strings.Join(extra, "; ") + ")"
	}
	if w.Answered.N == 0 {
		return count, "—", "—"
	}
	return count, ms(w.Answered.P50), ms(w.Answered.Max)
}

// writeAnswer reads the k-th ephemeral a person has (each `/reflect TEXT`
// gives exactly one: a refusal in the ack, or the answer through
// response_url): done once it is there, with a problem unless it says the
// reflection was saved.
func writeAnswer(msgs []slackemu.Message, k int) (done bool, problem string) {
	if len(msgs) < k {
		return false, ""
	}
	m := msgs[k-1]
	switch {
	case m.Source == "ack":
		return true, "refused: " + oneLineText(m.Text)
	case !strings.HasPrefix(m.Text, writeSaved):
		return true, "answered: " + oneLineText(m.Text)
	}
	return true, ""
}

// writeProbe sends the writes and collects their results.
type writeProbe struct {
	emu   *slackemu.Server
	users int // seeded bench users to rotate across

	ctx     context.Context
	cancel  context.CancelFunc
	checked chan struct{} // closed at the check's verdict
	paced   chan struct{} // closed when the pacer has sent its last
	once    sync.Once
	wg      sync.WaitGroup

	mu      sync.Mutex
	perUser map[string]int
	results []writeResult
	capped  bool
}

// startWrites starts sending at once. checking says whether the bot's
// check is still to come; an older build checked before it connected,
// so it only gets the writeAtLeast after the check.
func startWrites(ctx context.Context, emu *slackemu.Server, users int, checking bool) *writeProbe {
	w := &writeProbe{emu: emu, users: max(users, 1), checked: make(chan struct{}), paced: make(chan struct{}), perUser: map[string]int{}}
	w.ctx, w.cancel = context.WithCancel(ctx)
	if !checking {
		w.checkDone()
	}
	go w.pace()
	return w
}

func (w *writeProbe) checkDone() { w.once.Do(func() { close(w.checked) }) }

// pace sends one write every writeEvery until the verdict (or
// writeWindow), then tops up to writeAtLeast.
func (w *writeProbe) pace() {
	defer close(w.paced)
	start := time.Now()
	t := time.NewTicker(writeEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		after := false
		select {
		case <-w.checked:
			after = true
		default:
		}
		switch {
		case after && i >= writeAtLeast:
			return
		case !after && time.Since(start) >= writeWindow:
			w.mu.Lock()
			w.capped = true
			w.mu.Unlock()
			return
		}
		w.send(i, after)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			return
		}
	}
}

// send issues the i-th write from the next bench user in turn: with
// enough users each sends one, far inside the allowance of 30 a minute.
func (w *writeProbe) send(i int, after bool) {
	user := benchUserID(i % w.users)
	w.emu.AddUser(slackemu.User{ID: user, Name: strings.ToLower(user), TZ: "UTC"})
	w.mu.Lock()
	w.perUser[user]++
	k := w.perUser[user]
	w.mu.Unlock()
	text := fmt.Sprintf("bench write %d while the start-up check runs", i)
	w.wg.Go(func() {
		t0 := time.Now()
		problem := w.write(user, k, text)
		r := writeResult{Took: time.Since(t0), Err: problem, After: after}
		w.mu.Lock()
		w.results = append(w.results, r)
		w.mu.Unlock()
	})
}

// write types `/reflect text` as user and waits for its answer, the
// user's k-th; it returns what went wrong, or "".
func (w *writeProbe) write(user string, k int, text string) string {
	ctx, cancel := context.WithTimeout(w.ctx, writeWait)
	defer cancel()
	if _, err := w.emu.SlashCommand(ctx, user, "", "/reflect", text); err != nil {
		return fmt.Sprintf("not acked: %v", err)
	}
	var problem string
	err := w.emu.WaitFor(ctx, func() bool {
		var done bool
		done, problem = writeAnswer(w.emu.Ephemerals(user), k)
		return done
	})
	if err != nil {
		return fmt.Sprintf("no answer within %s", writeWait)
	}
	return problem
}

// finish is called at the check's verdict: it sends what is still owed
// and waits for every answer.
func (w *writeProbe) finish() writeStats {
	w.checkDone()
	<-w.paced
	w.wg.Wait()
	w.cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	return summarizeWrites(w.results, w.capped)
}

// halt stops sending and abandons the answers still awaited.
func (w *writeProbe) halt() {
	w.cancel()
	<-w.paced
	w.wg.Wait()
}
