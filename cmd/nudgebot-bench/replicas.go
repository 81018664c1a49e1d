package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// replicaSet is n replicas of `nudgebot run` on one PostgreSQL database,
// each its own process with its own Socket Mode connection to the one
// emulator. A replica is a slot: killed and started again, it keeps its
// number, and its logs are read together.
type replicaSet struct {
	b       *bench
	dir     string
	emu     *slackemu.Server
	db      *pgDB
	limits  map[string]int
	metrics bool
	procs   []*botProc // the running process of each slot; nil once it is gone
	logs    [][]string // each slot's log files, one per start
	starts  int
}

func (b *bench) newReplicaSet(dir string, emu *slackemu.Server, db *pgDB, n int, limits map[string]int, metrics bool) *replicaSet {
	return &replicaSet{b: b, dir: dir, emu: emu, db: db, limits: limits, metrics: metrics, procs: make([]*botProc, n), logs: make([][]string, n)}
}

// name is how the report calls slot i: A, B, …
func replicaName(i int) string { return string(rune('A' + i)) }

// start starts slot i and waits for its Socket Mode hello.
func (rs *replicaSet) start(ctx context.Context, i int) (*botProc, error) {
	if p := rs.procs[i]; p != nil && !p.hasExited() {
		return nil, fmt.Errorf("replica %s is still running", replicaName(i))
	}
	runDir := filepath.Join(rs.dir, fmt.Sprintf("replica-%s-%02d", replicaName(i), len(rs.logs[i])+1))
	if err := os.Mkdir(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the replica's directory: %w", err)
	}
	before := rs.emu.Connections()
	p, err := startBotPG(rs.b.bin, runDir, rs.emu, rs.db, rs.limits, rs.metrics)
	if err != nil {
		return nil, err
	}
	rs.procs[i] = p
	rs.logs[i] = append(rs.logs[i], p.logPath)
	rs.starts++
	if _, err := p.waitConnectedN(ctx, rs.emu, before+1, 60*time.Second); err != nil {
		return nil, fmt.Errorf("replica %s: %w", replicaName(i), err)
	}
	return p, nil
}

// startAll starts every slot, one after the other.
func (rs *replicaSet) startAll(ctx context.Context) error {
	for i := range rs.procs {
		if _, err := rs.start(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// kill SIGKILLs slot i and returns when it is gone; the slot is then
// empty until started again, so its exit is not taken for a crash.
func (rs *replicaSet) kill(i int) {
	if p := rs.procs[i]; p != nil {
		p.kill()
		rs.procs[i] = nil
	}
}

// killAll is for error paths.
func (rs *replicaSet) killAll() {
	for i := range rs.procs {
		rs.kill(i)
	}
}

// stopAll sends SIGTERM to every running slot at once, as an orchestrator
// stopping a deployment would, and waits for them.
func (rs *replicaSet) stopAll() []stopResult {
	out := make([]stopResult, len(rs.procs))
	done := make(chan struct{}, len(rs.procs))
	for i, p := range rs.procs {
		go func() {
			if p != nil {
				out[i] = p.stop()
			} else {
				out[i].NotRunning = true
			}
			done <- struct{}{}
		}()
	}
	for range rs.procs {
		<-done
	}
	return out
}

// exited says which running slot exited on its own, or -1.
func (rs *replicaSet) exited() int {
	for i, p := range rs.procs {
		if p != nil && p.hasExited() {
			return i
		}
	}
	return -1
}

// running says which slots have a live process.
func (rs *replicaSet) running() []bool {
	out := make([]bool, len(rs.procs))
	for i, p := range rs.procs {
		out[i] = p != nil && !p.hasExited()
	}
	return out
}

// anyExit is closed when any slot's current process exits; for waits
// that must end early when a replica dies on its own.
func (rs *replicaSet) anyExit() <-chan struct{} {
	ch := make(chan struct{})
	for _, p := range rs.procs {
		if p == nil {
			continue
		}
		go func() {
			<-p.exited
			select {
			case <-ch:
			default:
				close(ch)
			}
		}()
	}
	return ch
}

// posted is every nudge slot i's processes logged as delivered.
func (rs *replicaSet) posted(i int) ([]posted, error) {
	var all []posted
	for _, path := range rs.logs[i] {
		ps, err := readPosted(path)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

// allLogs lists every log file of every slot.
func (rs *replicaSet) allLogs() []string {
	var out []string
	for _, l := range rs.logs {
		out = append(out, l...)
	}
	return out
}

// exitedErr names the replica that exited on its own, and its log.
func (rs *replicaSet) exitedErr(i int, during string) error {
	p := rs.procs[i]
	return fmt.Errorf("replica %s: %w (%v) %s; see %s", replicaName(i), errBotExited, p.waitErr, during, p.logPath)
}

// waitConnectedN waits until the emulator has seen n Socket Mode hellos
// in all, giving up early if the bot exits.
func (p *botProc) waitConnectedN(ctx context.Context, emu *slackemu.Server, n int, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := emu.WaitConnected(ctx, n); err != nil {
		if p.hasExited() {
			return 0, fmt.Errorf("the bot exited before connecting (%v); see %s", p.waitErr, p.logPath)
		}
		return 0, fmt.Errorf("the bot did not connect within %s: %w; see %s", timeout, err, p.logPath)
	}
	return time.Since(p.started), nil
}

// leadingMsg starts the line a replica logs when it becomes the leader
// ("leading: this replica runs the scheduler…", with its epoch).
const leadingMsg = "leading"

// leaderLine is the first line at or after t in the logs at paths that
// says a replica now leads, with its time and epoch.
func leaderLine(paths []string, t time.Time) (at time.Time, line string, ok bool) {
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for l := range strings.SplitSeq(string(data), "\n") {
			msg, ok := logField(l, "msg")
			if !ok || !strings.HasPrefix(msg, leadingMsg) {
				continue
			}
			ts, ok := logField(l, "time")
			when, err := time.Parse(time.RFC3339Nano, ts)
			if !ok || err != nil || when.Before(t) {
				continue
			}
			if at.IsZero() || when.Before(at) {
				at, line = when, msg
				if epoch, ok := logField(l, "epoch"); ok {
					line += " (epoch " + epoch + ")"
				}
			}
			break
		}
	}
	return at, line, !at.IsZero()
}

// memOf reads each running slot's memory; a slot that is gone reads zero.
func (rs *replicaSet) memOf() []procStatus {
	out := make([]procStatus, len(rs.procs))
	for i, p := range rs.procs {
		if p != nil && !p.hasExited() {
			out[i], _ = p.status()
		}
	}
	return out
}
