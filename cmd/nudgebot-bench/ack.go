package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// ackDeadline is how long an envelope may wait for its ack before it
// counts as dropped. Slack itself re-sends after 3 s.
const ackDeadline = 5 * time.Second

// ackWarmup envelopes are sent and awaited one by one before measuring,
// so first-use costs (code paging in, buffers growing) are not counted.
const ackWarmup = 20

// ackTargets are the p99 targets per rate; rates without one are shown
// for information.
var ackTargets = map[int]time.Duration{200: 1100 * time.Microsecond, 1000: 2300 * time.Microsecond}

// ackRSSTarget is the memory target for the ack runs, in MB.
const ackRSSTarget = 40.0

// ackRow is one rate's result.
type ackRow struct {
	Baseline bool   // the bare slack-go client, not nudgebot
	Engine   string // the bot's storage, when the row compares engines: bbolt or PostgreSQL
	Rate     int
	Duration time.Duration
	Sent     int
	Offered  float64 // achieved send rate, per second
	Dropped  int     // no ack within ackDeadline
	NoReply  int     // acked without the help text, or with a reply Slack would refuse
	Lat      summary // of the acks within ackDeadline
	Mem      procStatus
	Load     loadSpan
	Stop     stopResult
}

func (b *bench) ackScenario(ctx context.Context) (string, error) {
	var rows []ackRow
	for _, rate := range b.opts.ackRates {
		for _, baseline := range []bool{false, true} {
			if baseline && !b.opts.ackBaseline {
				continue
			}
			r, err := b.ackRun(ctx, rate, b.opts.ackDuration, baseline)
			if err != nil {
				return "", fmt.Errorf("%d/s (%s): %w", rate, r.client(), err)
			}
			b.progress("ack: %s at %d/s: p50 %s p99 %s max %s dropped %d, VmRSS %.1f MB VmHWM %.1f MB, load %s, %s",
				r.client(), rate, ms(r.Lat.P50), ms(r.Lat.P99), ms(r.Lat.Max), r.Dropped, mb(r.Mem.VmRSS), mb(r.Mem.VmHWM), r.Load, r.Stop)
			rows = append(rows, r)
		}
	}
	return b.ackSection(rows), nil
}

// slashPayload is a slash command payload shaped like the one slackemu's
// SlashCommand driver and Slack send.
func slashPayload(emu *slackemu.Server, userID, text, tag string) (json.RawMessage, error) {
	p, err := json.Marshal(map[string]any{
		"token": "bench-verification-token", "team_id": slackemu.TeamID, "team_domain": slackemu.TeamDomain,
		"channel_id": emu.IMChannel(userID), "channel_name": "directmessage", "user_id": userID, "user_name": "bench",
		"command": "/nudge", "text": text, "api_app_id": slackemu.AppID, "is_enterprise_install": false,
		"response_url": emu.URL() + "response/" + tag, "trigger_id": tag,
	})
	if err != nil {
		return nil, fmt.Errorf("encode a slash command payload: %w", err)
	}
	return p, nil
}

func (r ackRow) client() string {
	switch {
	case r.Baseline:
		return "baseline"
	case r.Engine != "":
		return "nudgebot " + r.Engine
	}
	return "nudgebot"
}

// ackRun offers rate slash commands a second for dur to a fresh bot, or
// to the bare slack-go client when baseline is set.
func (b *bench) ackRun(ctx context.Context, rate int, dur time.Duration, baseline bool) (ackRow, error) {
	row := ackRow{Rate: rate, Duration: dur, Baseline: baseline}
	return b.ackRunWith(ctx, row, func(dir string, emu *slackemu.Server) (*botProc, error) {
		if baseline {
			return startEcho(dir, emu)
		}
		return startBot(b.bin, dir, emu, filepath.Join(dir, "nudgebot.db"), nil)
	})
}

// ackRunWith offers row.Rate slash commands a second for row.Duration to
// the process launch starts.
func (b *bench) ackRunWith(ctx context.Context, row ackRow, launch func(dir string, emu *slackemu.Server) (*botProc, error)) (ackRow, error) {
	rate, dur := row.Rate, row.Duration
	b.progress("ack: %s at %d/s for %s", row.client(), rate, dur)
	dir, err := b.dir(fmt.Sprintf("ack-%d-%s", rate, strings.ReplaceAll(row.client(), " ", "-")))
	if err != nil {
		return row, err
	}
	emu, err := newEmulator()
	if err != nil {
		return row, err
	}
	defer emu.Close()
	const userID = "UBENCHACK01"
	emu.AddUser(slackemu.User{ID: userID, Name: "bench", TZ: "UTC"})

	p, err := launch(dir, emu)
	if err != nil {
		return row, err
	}
	defer p.kill()
	if _, err := p.waitConnected(ctx, emu, 30*time.Second); err != nil {
		return row, err
	}

	for i := range ackWarmup {
		tag := fmt.Sprintf("warm.%d.%d", rate, i)
		payload, err := slashPayload(emu, userID, "help", tag)
		if err != nil {
			return row, err
		}
		wctx, cancel := context.WithTimeout(ctx, ackDeadline)
		_, err = emu.Send(wctx, slackemu.Envelope{ID: "warm-" + tag, Type: "slash_commands", Payload: payload, AcceptsResponsePayload: true})
		cancel()
		if err != nil {
			return row, fmt.Errorf("warm-up command %d was not acked: %w; see %s", i+1, err, p.logPath)
		}
	}

	// Payloads are built before the clock starts, so the pacing loop
	// does nothing but hand envelopes over.
	total := int(float64(rate) * dur.Seconds())
	envs := make([]slackemu.Envelope, total)
	ids := make(map[string]bool, total)
	for i := range envs {
		tag := fmt.Sprintf("%d.%d.bench", rate, i)
		payload, err := slashPayload(emu, userID, "help", tag)
		if err != nil {
			return row, err
		}
		envs[i] = slackemu.Envelope{ID: fmt.Sprintf("bench-%d-%07d", rate, i), Type: "slash_commands", Payload: payload, AcceptsResponsePayload: true}
		ids[envs[i].ID] = true
	}

	row.Load.Before = readLoad()
	start, last, err := pace(ctx, rate, envs, emu.SendNoWait, p.exited)
	row.Sent = len(envs)
	if err != nil {
		return row, fmt.Errorf("sending: %w; see %s", err, p.logPath)
	}
	if elapsed := last.Sub(start); elapsed > 0 && row.Sent > 1 {
		row.Offered = float64(row.Sent-1) / elapsed.Seconds()
	}

	// Wait for the stragglers, at most ackDeadline after the last send.
	acks := waitAcks(ctx, emu, ids, last.Add(ackDeadline), p.exited)
	row.Mem, err = p.status()
	if err != nil {
		return row, err
	}
	row.Load.After = readLoad()
	row.Stop = p.stop()

	var lat []time.Duration
	for _, a := range acks {
		if a.Latency > ackDeadline {
			continue // as good as dropped: Slack re-sent it long ago
		}
		lat = append(lat, a.Latency)
		if a.Problem != "" || !bytes.Contains(a.Payload, []byte("/nudge help")) {
			row.NoReply++
		}
	}
	row.Dropped = row.Sent - len(lat)
	row.Lat = summarize(lat)
	return row, nil
}

// pace hands envs to send at rate per second, paced by a ticker. Ticks a
// busy machine skips are made up on the next one, so the offered rate
// holds; the loop ends after len(envs) sends or twice the planned time.
func pace(ctx context.Context, rate int, envs []slackemu.Envelope, send func(slackemu.Envelope), exited <-chan struct{}) (start, last time.Time, err error) {
	interval := time.Second / time.Duration(rate)
	planned := interval * time.Duration(len(envs))
	t := time.NewTicker(interval)
	defer t.Stop()
	start = time.Now()
	sent := 0
	for sent < len(envs) {
		select {
		case <-ctx.Done():
			return start, time.Now(), ctx.Err()
		case <-exited:
			return start, time.Now(), errBotExited
		case <-t.C:
		}
		elapsed := time.Since(start)
		if elapsed > 2*planned+time.Second {
			return start, time.Now(), fmt.Errorf("sent only %d of %d in %s: the machine cannot keep this rate", sent, len(envs), elapsed.Round(time.Millisecond))
		}
		due := min(len(envs), int(elapsed/interval))
		for ; sent < due; sent++ {
			send(envs[sent])
		}
	}
	return start, time.Now(), nil
}

// waitAcks polls the emulator's acks until every id has one, deadline
// passes, or the bot exits, and returns the acks for ids, one per id.
func waitAcks(ctx context.Context, emu *slackemu.Server, ids map[string]bool, deadline time.Time, exited <-chan struct{}) []slackemu.Ack {
	collect := func() []slackemu.Ack {
		seen := make(map[string]bool, len(ids))
		var out []slackemu.Ack
		for _, a := range emu.Acks() {
			if ids[a.EnvelopeID] && !seen[a.EnvelopeID] {
				seen[a.EnvelopeID] = true
				out = append(out, a)
			}
		}
		return out
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		acks := collect()
		if len(acks) == len(ids) || !time.Now().Before(deadline) {
			return acks
		}
		select {
		case <-ctx.Done():
			return acks
		case <-exited:
			return acks
		case <-t.C:
		}
	}
}

func (b *bench) ackSection(rows []ackRow) string {
	var sb strings.Builder
	b.sectionHead(&sb, "ack")
	fmt.Fprintf(&sb, "`/nudge help` sent as `slash_commands` envelopes at a fixed rate (paced by a `time.Ticker`, missed ticks made up), %s per rate, "+
		"after %d warm-up commands. The help text rides in the ack. Latency is the emulator's `Ack.Latency`: from the envelope's frame written to the ack read back, "+
		"so it includes both WebSocket hops on the loopback and the emulator's own goroutines. Dropped = no ack within %s. Memory is read from "+
		"`/proc/PID/status` at the end of the run; each row is a freshly started process.\n\n", rows[0].Duration, ackWarmup, ackDeadline)
	if b.opts.ackBaseline {
		sb.WriteString("Each nudgebot row is followed by a *baseline* row: the same load against a bare slack-go Socket Mode client in its own process " +
			"(`nudgebot-bench " + echoFlag + "`) that acks every envelope at once from its event loop with a reply of the same size, and does nothing " +
			"else. The baseline is the floor this harness can measure on this machine; the difference is nudgebot's own cost.\n\n")
	}
	sb.WriteString("| client | rate | sent | achieved | p50 | p90 | p99 | max | dropped | bad replies | VmRSS | VmHWM | p99 target | RSS < 40 MB | stop (SIGTERM) | load 1m before→after |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|\n")
	for _, r := range rows {
		target, rss := "—", "—"
		if t, ok := ackTargets[r.Rate]; ok && !r.Baseline {
			target = fmt.Sprintf("< %s: %s", ms(t), verdict(r.Lat.N > 0 && r.Lat.P99 < t && r.Dropped == 0))
		}
		if !r.Baseline {
			rss = verdict(mb(r.Mem.VmHWM) < ackRSSTarget)
		}
		name := "nudgebot"
		if r.Baseline {
			name = "*baseline*"
		}
		fmt.Fprintf(&sb, "| %s | %d/s | %d | %.0f/s | %s | %s | %s | %s | %d | %d | %.1f MB | %.1f MB | %s | %s | %s | %s |\n",
			name, r.Rate, r.Sent, r.Offered, ms(r.Lat.P50), ms(r.Lat.P90), ms(r.Lat.P99), ms(r.Lat.Max), r.Dropped, r.NoReply,
			mb(r.Mem.VmRSS), mb(r.Mem.VmHWM), target, rss, stopCell(r.Stop), r.Load)
	}
	sb.WriteString("\nReference: Slack's Bolt for JS acks at p99 3.3 ms at 200/s and 6.9 ms at 1,000/s with 115–130 MB RSS.\n")
	sb.WriteString("\nMemory and CPU detail (end of run):\n\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "- %s at %d/s: RssAnon %.1f MB, RssFile %.1f MB, %d threads, CPU %s over its life.\n",
			r.client(), r.Rate, mb(r.Mem.RssAnon), mb(r.Mem.RssFile), r.Mem.Threads, r.Stop.CPU.Round(10*time.Millisecond))
	}
	return sb.String()
}

// stopCell shows how the bot stopped and whether that met the promise.
func stopCell(r stopResult) string {
	if r.ok() {
		return r.String()
	}
	return "**" + r.String() + "**"
}
