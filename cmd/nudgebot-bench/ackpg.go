package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Engines as the ack-pg rows name them.
const (
	engineBBolt = "bbolt"
	enginePG    = "PostgreSQL"
)

// ackPGScenario measures the ack latency of one bot on PostgreSQL beside
// one on bbolt, the same way and in the same run, so that the machine's
// load of the moment weighs on both alike.
func (b *bench) ackPGScenario(ctx context.Context) (string, error) {
	srv, err := b.pgServer(ctx)
	if err != nil {
		return "", err
	}
	var rows []ackRow
	for _, rate := range b.opts.ackPGRates {
		for _, engine := range []string{engineBBolt, enginePG} {
			row := ackRow{Rate: rate, Duration: b.opts.ackDuration, Engine: engine}
			var start func(dir string, emu *slackemu.Server) (*botProc, error)
			var db *pgDB
			if engine == engineBBolt {
				start = func(dir string, emu *slackemu.Server) (*botProc, error) {
					return startBot(b.bin, dir, emu, filepath.Join(dir, "nudgebot.db"), nil)
				}
			} else {
				if db, err = srv.createDB(ctx, "ack"); err != nil {
					return "", err
				}
				start = func(dir string, emu *slackemu.Server) (*botProc, error) {
					return startBotPG(b.bin, dir, emu, db, nil, false)
				}
			}
			r, err := b.ackRunWith(ctx, row, start)
			if db != nil {
				b.release(db)
			}
			if err != nil {
				return "", fmt.Errorf("%d/s (%s): %w", rate, r.client(), err)
			}
			b.progress("ack-pg: %s at %d/s: p50 %s p99 %s max %s dropped %d, VmHWM %.1f MB, load %s, %s",
				r.client(), rate, ms(r.Lat.P50), ms(r.Lat.P99), ms(r.Lat.Max), r.Dropped, mb(r.Mem.VmHWM), r.Load, r.Stop)
			rows = append(rows, r)
		}
	}
	return b.ackPGSection(srv, rows), nil
}

func (b *bench) ackPGSection(srv *pgServer, rows []ackRow) string {
	var sb strings.Builder
	b.pgSectionHead(&sb, "ack-pg", srv)
	sb.WriteString("Reproduce: `go run ./cmd/nudgebot-bench -scenarios ack-pg` (`-ack-pg-rates`, `-ack-duration` and `-pg-url` change it).\n\n")
	fmt.Fprintf(&sb, "Section 1's measurement, once with the bot on a bbolt file and once on a fresh PostgreSQL database (`storage.driver: postgres`), "+
		"one process each, one after the other in the same run: `/nudge help` as `slash_commands` envelopes at a fixed rate for %s after %d warm-up commands, "+
		"latency from the envelope written to the ack read back (the emulator's `Ack.Latency`), dropped = no ack within %s. "+
		"The ack goes out before any database work (the durable once-only mark of the envelope is written after it, by a worker), "+
		"so the engine shows here only through the CPU and the connections it takes.\n\n", rows[0].Duration, ackWarmup, ackDeadline)
	sb.WriteString("| storage | rate | sent | achieved | p50 | p90 | p99 | max | dropped | bad replies | VmRSS | VmHWM | p99 target | stop (SIGTERM) | load 1m before→after |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n")
	for _, r := range rows {
		target := "—"
		if t, ok := ackTargets[r.Rate]; ok {
			target = fmt.Sprintf("< %s: %s", ms(t), verdict(r.Lat.N > 0 && r.Lat.P99 < t && r.Dropped == 0))
		}
		fmt.Fprintf(&sb, "| %s | %d/s | %d | %.0f/s | %s | %s | %s | %s | %d | %d | %.1f MB | %.1f MB | %s | %s | %s |\n",
			r.Engine, r.Rate, r.Sent, r.Offered, ms(r.Lat.P50), ms(r.Lat.P90), ms(r.Lat.P99), ms(r.Lat.Max), r.Dropped, r.NoReply,
			mb(r.Mem.VmRSS), mb(r.Mem.VmHWM), target, stopCell(r.Stop), r.Load)
	}
	sb.WriteString("\nCPU over each process's life: ")
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s at %d/s %s", r.Engine, r.Rate, r.Stop.CPU.Round(10*time.Millisecond))
	}
	sb.WriteString(".\n")
	return sb.String()
}
