package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/slackemu"
)

// Tokens the emulator accepts and the bot is given. They are not secrets.
const (
	benchBotToken = "xoxb-bench-not-a-real-token"
	benchAppToken = "xapp-bench-not-a-real-token"
)

// shutdownTimeout is what the bot's config allows for a graceful stop;
// the bench checks the bot keeps to it.
const shutdownTimeout = 10 * time.Second

// newEmulator starts a Slack emulator that accepts only the bench's tokens.
func newEmulator(opts ...slackemu.Option) (*slackemu.Server, error) {
	all := append([]slackemu.Option{slackemu.WithBotToken(benchBotToken), slackemu.WithAppToken(benchAppToken)}, opts...)
	emu, err := slackemu.Listen(all...)
	if err != nil {
		return nil, fmt.Errorf("start the Slack emulator: %w", err)
	}
	return emu, nil
}

// botConfig is the YAML the bot runs with. Tokens, the API URL and the
// database path come from the environment, as in production.
func botConfig(limits map[string]int) string { return botConfigAt(limits, "") }

// botConfigAt is botConfig with the operator's listener (/metrics) on
// metricsAddr; "" leaves it off, as the memory figures want.
func botConfigAt(limits map[string]int, metricsAddr string) string {
	var sb strings.Builder
	sb.WriteString("nudges:\n  schedule: \"0 9 * * *\"\ndigests: []\nadmins: []\n")
	sb.WriteString("log:\n  level: info\n  format: text\n")
	fmt.Fprintf(&sb, "shutdown_timeout: %s\n", shutdownTimeout)
	if metricsAddr != "" {
		fmt.Fprintf(&sb, "metrics:\n  addr: %s\n", metricsAddr)
	}
	if len(limits) > 0 {
		sb.WriteString("slack_limits:\n")
		for _, m := range sortedKeys(limits) {
			fmt.Fprintf(&sb, "  %s: %d\n", m, limits[m])
		}
	}
	return sb.String()
}

// botProc is a running `nudgebot run`.
type botProc struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	started time.Time
	exited  chan struct{} // closed once Wait returned
	waitErr error         // valid after exited is closed

	metricsURL string // the bot's /metrics, when started with startBotMetrics
}

// startBot writes the bot's config into dir and starts `bin run` against
// emu with the database at dbPath. Its log goes to dir/bot.log.
func startBot(bin, dir string, emu *slackemu.Server, dbPath string, limits map[string]int) (*botProc, error) {
	return startBotLog(bin, dir, emu, dbPath, limits, false)
}

// startBotLog is startBot, with the bot's output through a pipe that this
// process copies into the log when piped is set: then a file-size limit
// put on the bot (prlimit --fsize) does not also cut off its log.
func startBotLog(bin, dir string, emu *slackemu.Server, dbPath string, limits map[string]int, piped bool) (*botProc, error) {
	return startBotConfig(bin, dir, emu, dbPath, botConfig(limits), piped)
}

// startBotMetrics is startBot with the bot's /metrics on a free loopback
// port, so that its storage counters can be read (storageCounts).
func startBotMetrics(bin, dir string, emu *slackemu.Server, dbPath string, limits map[string]int) (*botProc, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	p, err := startBotConfig(bin, dir, emu, dbPath, botConfigAt(limits, addr), false)
	if err != nil {
		return nil, err
	}
	p.metricsURL = "http://" + addr + "/metrics"
	return p, nil
}

// freeLoopbackAddr finds a port free now; the bot listens on it a moment
// later. Another process could take it in between, and the bot would
// then exit saying so.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the bot's metrics: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port for the bot's metrics: %w", err)
	}
	return addr, nil
}

func startBotConfig(bin, dir string, emu *slackemu.Server, dbPath, cfgText string, piped bool) (*botProc, error) {
	return startBotEnv(bin, dir, emu, map[string]string{config.EnvStoragePath: dbPath}, cfgText, piped)
}

// startBotPG starts `bin run` against emu on the PostgreSQL database db,
// with the operator's listener on a free loopback port when metrics is
// set. Replicas are several of these on one db.
func startBotPG(bin, dir string, emu *slackemu.Server, db *pgDB, limits map[string]int, metrics bool) (*botProc, error) {
	addr := ""
	if metrics {
		var err error
		if addr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	p, err := startBotEnv(bin, dir, emu, pgEnv(db), botConfigAt(limits, addr)+"storage:\n  driver: postgres\n", false)
	if err != nil {
		return nil, err
	}
	if addr != "" {
		p.metricsURL = "http://" + addr + "/metrics"
	}
	return p, nil
}

// startBotEnv starts the bot with cfgText as its config and storage (the
// database's path, or its URL and key) in its environment.
func startBotEnv(bin, dir string, emu *slackemu.Server, storage map[string]string, cfgText string, piped bool) (*botProc, error) {
	cfgPath := filepath.Join(dir, "nudgebot.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, fmt.Errorf("write the bot's config: %w", err)
	}
	// The config must be one the bot accepts; finding out here gives a
	// clearer message than a bot that exits with code 2.
	env := map[string]string{config.EnvBotToken: benchBotToken, config.EnvAppToken: benchAppToken, config.EnvAPIURL: emu.URL()}
	for k, v := range storage {
		env[k] = v
	}
	if _, err := config.Load(cfgPath, func(k string) string { return env[k] }); err != nil {
		return nil, fmt.Errorf("the bench wrote a config the bot refuses: %w", err)
	}
	return startProcLog(bin, []string{"run", "-config", cfgPath}, dir, env, piped)
}

// startEcho starts this program as the ack baseline against emu.
func startEcho(dir string, emu *slackemu.Server) (*botProc, error) {
	exe, err := echoBinary()
	if err != nil {
		return nil, err
	}
	env := map[string]string{config.EnvBotToken: benchBotToken, config.EnvAppToken: benchAppToken, config.EnvAPIURL: emu.URL()}
	return startProc(exe, []string{echoFlag}, dir, env)
}

// startProc starts bin with args in dir, with env as its whole
// environment and its output in dir/bot.log.
func startProc(bin string, args []string, dir string, env map[string]string) (*botProc, error) {
	return startProcLog(bin, args, dir, env, false)
}

// writerOnly hides a file's type from os/exec, which then copies through
// a pipe instead of handing the child the file itself.
type writerOnly struct{ io.Writer }

func startProcLog(bin string, args []string, dir string, env map[string]string, piped bool) (*botProc, error) {
	logPath := filepath.Join(dir, "bot.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the log file: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// A clean environment: only what `nudgebot run` reads, so nothing
	// from the shell (GOGC, GOMAXPROCS, GODEBUG…) changes what is measured.
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if piped {
		cmd.Stdout, cmd.Stderr = writerOnly{logFile}, writerOnly{logFile}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &botProc{cmd: cmd, logPath: logPath, logFile: logFile, started: time.Now(), exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitConnected waits for the bot's Socket Mode hello, the emulator's
// first, giving up early if the bot exits.
func (p *botProc) waitConnected(ctx context.Context, emu *slackemu.Server, timeout time.Duration) (time.Duration, error) {
	return p.waitConnectedN(ctx, emu, 1, timeout)
}

func (p *botProc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// procStatus is the bot's memory as /proc/PID/status reports it, in kB.
type procStatus struct {
	VmRSS, VmHWM, RssAnon, RssFile int64
	Threads                        int
}

func (p *botProc) status() (procStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("read the bot's memory: %w", err)
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads the fields of /proc/PID/status the report uses.
func parseStatus(r io.Reader) (procStatus, error) {
	var s procStatus
	fields := map[string]*int64{"VmRSS": &s.VmRSS, "VmHWM": &s.VmHWM, "RssAnon": &s.RssAnon, "RssFile": &s.RssFile}
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if k == "Threads" {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return s, fmt.Errorf("proc status Threads %q: %w", v, err)
			}
			s.Threads = n
			continue
		}
		dst, ok := fields[k]
		if !ok {
			continue
		}
		if len(f) != 2 || f[1] != "kB" {
			return s, fmt.Errorf("proc status %s %q: want a number of kB", k, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("proc status %s: %w", k, err)
		}
		*dst = n
		found++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read proc status: %w", err)
	}
	if s.VmRSS == 0 || s.VmHWM == 0 {
		return s, errors.New("proc status has no VmRSS/VmHWM: not a Linux /proc, or the process is gone")
	}
	return s, nil
}

// mappedRSS is how much of the file at path is resident in the bot, in
// kB, summed over its mappings in /proc/PID/smaps: bbolt maps the
// database, so this is the part of RssFile that is the database.
func (p *botProc) mappedRSS(path string) (int64, error) {
	return mappedRSS(fmt.Sprint(p.cmd.Process.Pid), path)
}

// mappedRSS reads /proc/PID/smaps of pid ("self" for this process).
func mappedRSS(pid, path string) (int64, error) {
	f, err := os.Open("/proc/" + pid + "/smaps")
	if err != nil {
		return 0, fmt.Errorf("read the mappings of process %s: %w", pid, err)
	}
	defer f.Close()
	return parseSmapsRSS(f, path)
}

// parseSmapsRSS sums the Rss of every mapping of path in smaps text.
func parseSmapsRSS(r io.Reader, path string) (int64, error) {
	var total int64
	in := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			// A mapping header: range perms offset dev inode [path].
			in = len(f) >= 6 && strings.Join(f[5:], " ") == path
			continue
		}
		if in && len(f) == 3 && f[0] == "Rss:" && f[2] == "kB" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("smaps Rss %q: %w", line, err)
			}
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read smaps: %w", err)
	}
	return total, nil
}

// mb turns kB (KiB, as /proc counts) into MB, the unit the targets use.
func mb(kb int64) float64 { return float64(kb) * 1024 / 1e6 }

// stopResult is how the bot ended.
type stopResult struct {
	ExitCode int
	Took     time.Duration // from SIGTERM to exit
	Killed   bool          // it overran and was killed
	CPU      time.Duration // user+system time over its whole life
	MaxRSSkB int64         // getrusage's peak, a cross-check of VmHWM
	// NotRunning: there was nothing to stop (a replica killed and not
	// started again).
	NotRunning bool
}

// ok reports whether the bot stopped as promised: exit 0 within its
// shutdown timeout.
func (r stopResult) ok() bool {
	return r.NotRunning || !r.Killed && r.ExitCode == 0 && r.Took <= shutdownTimeout
}

func (r stopResult) String() string {
	switch {
	case r.NotRunning:
		return "not running"
	case r.Killed:
		return fmt.Sprintf("KILLED after %s", r.Took.Round(time.Millisecond))
	case r.ExitCode != 0:
		return fmt.Sprintf("exit %d in %s", r.ExitCode, r.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("exit 0 in %s", r.Took.Round(time.Millisecond))
}

// stop sends SIGTERM and waits for the shutdown timeout plus a margin,
// then kills. It is safe to call after the bot exited by itself.
func (p *botProc) stop() stopResult {
	start := time.Now()
	var r stopResult
	if !p.hasExited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(shutdownTimeout + 5*time.Second)
		select {
		case <-p.exited:
		case <-t.C:
			r.Killed = true
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		t.Stop()
	}
	r.Took = time.Since(start)
	st := p.cmd.ProcessState
	r.ExitCode = st.ExitCode()
	r.CPU = st.UserTime() + st.SystemTime()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSkB = ru.Maxrss // kB on Linux
	}
	return r
}

// kill ends the bot at once; for error paths, where no figure is taken.
func (p *botProc) kill() {
	if p.hasExited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}
