// Command nudgebot-bench measures the real nudgebot binary under load,
// against the Slack emulator, and writes docs/performance.md.
//
//	go run ./cmd/nudgebot-bench            full run (about 45 minutes), rewrites the report
//	go run ./cmd/nudgebot-bench -quick     smoke run (a few minutes), prints only
//	go run ./cmd/nudgebot-bench -scenarios ack -ack-rates 1000
//	go run ./cmd/nudgebot-bench -scenarios nine     100,000 due at once at 500 posts/s
//	go run ./cmd/nudgebot-bench -scenarios pace     20 and 1,000 at one slot, the bot learning the workspace limit
//	sudo go run ./cmd/nudgebot-bench -scenarios faults   kills, 429s, disconnects, latency, disk full
//	go run ./cmd/nudgebot-bench -scenarios ack-pg,burst-pg,size-pg,failover-pg   the same on PostgreSQL (-pg-url)
//
// The bot runs as a separate process built from ./cmd/nudgebot, so the
// memory it reports is the bot's alone; the emulator runs in this
// process. Everything listens on 127.0.0.1 only, and every loop is
// bounded in count and in time. The PostgreSQL scenarios create a
// database of their own on the -pg-url server for each run and drop it
// afterwards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a scenario could not run, or the bot misbehaved
	exitUsage  = 2
)

// scenarioOrder is the order scenarios run and appear in the report.
var scenarioOrder = []string{"ack", "burst", "subscribers", "tick", "nine", "faults", "retention", "startup", "pace", "migrate", "weight",
	"ack-pg", "burst-pg", "size-pg", "failover-pg"}

// options are the flags, after -quick filled in what was not given.
type options struct {
	quick              bool
	scenarios          []string
	ackRates           []int
	ackBaseline        bool
	ackDuration        time.Duration
	burstSubs          int
	burstRate          int
	burstBotPct        []int // the bot's slack_limits as percentages of burstRate, one run each
	subs               int
	settle             time.Duration
	tickDue            int
	tickRepeat         int
	nineSubs           int
	nineRate           int           // chat.postMessage a minute, the emulator's and the bot's
	nineMax            time.Duration // bound from the due instant
	faultSubs          int
	faultRuns          []string
	faultKills         int
	faultStorm         int // 429s in the storm
	faultDisconnectFor time.Duration
	faultDiskFull      time.Duration // how long the disk stays full
	faultDisk          string
	retPeople          int
	retDays            int
	retention          time.Duration
	retCompact         time.Duration // simulated time between compactions at most
	startSubs          int
	startFileMB        int
	startBefore        string // a nudgebot binary to compare start-up with; "" for none
	paceLimits         []int  // workspace limits on chat.postMessage a minute, one set of runs each
	pacePeople         []int  // people due at the slot, one run each per limit
	migSubs            int
	migDeliveries      int
	migReflections     int
	weightSubs         int
	weightRuns         int
	weightSettle       time.Duration
	seed               uint64 // for the kill moments
	pgURL              string // the PostgreSQL server the -pg scenarios create their databases on
	ackPGRates         []int
	burstPGSubs        int
	burstPGRate        int   // chat.postMessage a minute, the emulator's and each replica's
	replicas           []int // replicas on one database, one burst-pg run each
	burstPGMax         time.Duration
	sizePGPeople       int
	sizePGDays         int
	failSubs           int
	failRate           int // chat.postMessage a minute in failover-pg
	failReplicas       int
	report             string // "" writes no report
	repo               string
	bin                string
	keep               bool
}

// full reports whether this run is the default, complete one that owns
// the whole report file.
func (o options) full() bool {
	return !o.quick && len(o.scenarios) == len(scenarioOrder)
}

// listFlags are the flags given as comma-separated lists, as typed;
// parseLists turns them into options.
type listFlags struct {
	scenarios, ackRates, faultRuns, paceLimits, pacePeople, ackPGRates, replicas, burstBotPct *string
}

func parseFlags(args []string, stderr io.Writer) (options, int) {
	fs := flag.NewFlagSet("nudgebot-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var lists listFlags
	lists.scenarios = fs.String("scenarios", strings.Join(scenarioOrder, ","), "comma-separated scenarios to run: "+strings.Join(scenarioOrder, ", "))
	fs.BoolVar(&o.quick, "quick", false, "short durations and small populations for a smoke run; writes no report unless -report is given")
	defineBboltFlags(fs, &o, &lists)
	definePGFlags(fs, &o, &lists)
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed for the kill moments; the report names it")
	fs.StringVar(&o.report, "report", "docs/performance.md", "report file to write, relative to -repo; empty writes none")
	fs.StringVar(&o.repo, "repo", "", "the nudgebot module root; default: found with `go env GOMOD`")
	fs.StringVar(&o.bin, "bin", "", "a nudgebot binary to measure instead of building ./cmd/nudgebot")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (databases, bot logs) after a successful run")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nudgebot-bench [flags]\n\nBuilds ./cmd/nudgebot, runs it against an in-process Slack emulator and\nmeasures ack latency, a 9 o'clock burst, memory with many subscribers,\nthe scheduler pass, 100,000 people due at once, faults (kills, 429s,\ndisconnects, latency, a full disk), pacing by what Slack allows,\nmoving between engines, what PostgreSQL support weighs, and on\nPostgreSQL: ack latency, 100,000 due with replicas, the size per kept\ndelivery and a failover. A full run rewrites docs/performance.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK
		}
		return o, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nudgebot-bench: unexpected argument %q; all settings are flags (see -h)\n", fs.Arg(0))
		return o, exitUsage
	}
	if name, err := lists.parse(&o); err != nil {
		fmt.Fprintf(stderr, "nudgebot-bench: -%s: %v\n", name, err)
		return o, exitUsage
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o.shorten(set)
	}
	if msg := o.check(); msg != "" {
		fmt.Fprintln(stderr, "nudgebot-bench:", msg)
		return o, exitUsage
	}
	return o, -1
}

// defineBboltFlags defines the flags of the scenarios that run the bot on
// a bbolt file.
func defineBboltFlags(fs *flag.FlagSet, o *options, lists *listFlags) {
	lists.ackRates = fs.String("ack-rates", "50,200,1000", "slash commands per second for the ack scenario, comma-separated")
	fs.BoolVar(&o.ackBaseline, "ack-baseline", true, "also run each ack rate against a bare slack-go client that acks at once, to show the harness's share")
	fs.DurationVar(&o.ackDuration, "ack-duration", time.Minute, "how long each ack rate runs")
	fs.IntVar(&o.burstSubs, "burst-subscribers", 10_000, "subscribers all due in the same minute, for the burst scenario")
	fs.IntVar(&o.burstRate, "burst-rate", 6000, "chat.postMessage limit per minute that the emulator enforces")
	lists.burstBotPct = fs.String("burst-bot-pct", "100,98", "the bot's slack_limits for chat.postMessage as percentages of -burst-rate, one burst run each")
	fs.IntVar(&o.subs, "subscribers", 100_000, "subscribers in the database for the subscribers and tick scenarios")
	fs.DurationVar(&o.settle, "settle", 20*time.Second, "how long the bot runs with -subscribers people before its memory is read")
	fs.IntVar(&o.tickDue, "tick-due", 1000, "how many of -subscribers are due in the tick scenario")
	fs.IntVar(&o.tickRepeat, "tick-repeat", 20, "repetitions of each read-only tick measurement")
	fs.IntVar(&o.nineSubs, "nine-subscribers", 100_000, "subscribers all due at the same instant, for the nine scenario")
	fs.IntVar(&o.nineRate, "nine-rate", 30_000, "chat.postMessage limit per minute for the nine scenario: the emulator enforces it, the bot is configured with it")
	fs.DurationVar(&o.nineMax, "nine-max", 15*time.Minute, "give up on the nine scenario this long after the due instant")
	fs.IntVar(&o.faultSubs, "faults-subscribers", 500, "subscribers all due at once in each fault run")
	lists.faultRuns = fs.String("faults-runs", strings.Join(faultOrder, ","), "fault runs for the faults scenario: "+strings.Join(faultOrder, ", "))
	fs.IntVar(&o.faultKills, "faults-kills", 10, "SIGKILLs during deliveries before the clean run")
	fs.IntVar(&o.faultStorm, "faults-storm", 200, "chat.postMessage calls answered 429 in the storm")
	fs.DurationVar(&o.faultDisconnectFor, "faults-disconnect-for", 30*time.Second, "how long slash commands are sent while the socket is disconnected every 3s")
	fs.DurationVar(&o.faultDiskFull, "faults-disk-full", 20*time.Second, "how long the disk stays full")
	fs.StringVar(&o.faultDisk, "faults-disk", diskAuto, "how to fill the disk: tmpfs (mount, needs root), fsize (prlimit on the bot), or auto")
	fs.IntVar(&o.retPeople, "retention-people", 1000, "people nudged every simulated day in the retention scenario")
	fs.IntVar(&o.retDays, "retention-days", 3*365, "simulated days in the retention scenario")
	fs.DurationVar(&o.retention, "retention", 400*24*time.Hour, "storage.retention for the retention scenario")
	fs.DurationVar(&o.retCompact, "retention-compact", 7*24*time.Hour, "simulated time between compactions, at most, in the retention scenario (the bot compacts for retention weekly)")
	fs.IntVar(&o.startSubs, "startup-subscribers", 100_000, "subscribers in the first start-up database")
	fs.IntVar(&o.startFileMB, "startup-file-mb", 1024, "size of the second start-up database, in MB, filled with delivery history")
	fs.StringVar(&o.startBefore, "startup-before-bin", "", "an older nudgebot binary to start on the same files, for comparison (its schema 1 copy is made for it)")
	lists.paceLimits = fs.String("pace-limits", "300,1000,5000", "workspace limits on chat.postMessage a minute the emulator enforces (the bot is not told) in the pace scenario, comma-separated")
	lists.pacePeople = fs.String("pace-people", "20,1000", "people due at one slot in the pace scenario, one run each per limit, comma-separated")
	fs.IntVar(&o.migSubs, "migrate-subscribers", 100_000, "subscribers in the file the migrate scenario copies")
	fs.IntVar(&o.migDeliveries, "migrate-deliveries", 1_000_000, "deliveries in the file the migrate scenario copies")
	fs.IntVar(&o.migReflections, "migrate-reflections", 5000, "sealed reflections in the file the migrate scenario copies")
	fs.IntVar(&o.weightSubs, "weight-subscribers", 10_000, "subscribers in the file the weight scenario starts each build on")
	fs.IntVar(&o.weightRuns, "weight-runs", 9, "starts of each build in the weight scenario")
	fs.DurationVar(&o.weightSettle, "weight-settle", 10*time.Second, "how long each build runs after connecting before its memory is read")
}

// definePGFlags defines the flags of the scenarios that run the bot on
// PostgreSQL.
func definePGFlags(fs *flag.FlagSet, o *options, lists *listFlags) {
	fs.StringVar(&o.pgURL, "pg-url", defaultPGServer(os.Getenv), "PostgreSQL server for the -pg scenarios and migrate, as a URL to a database on it; each -pg run creates a database nudgebot_bench_… there and drops it, migrate a schema (default: "+envTestDatabase+", else "+defaultPGURL+")")
	lists.ackPGRates = fs.String("ack-pg-rates", "200", "slash commands per second for the ack-pg scenario (each rate on bbolt and on PostgreSQL), comma-separated")
	fs.IntVar(&o.burstPGSubs, "burst-pg-subscribers", 100_000, "subscribers all due at one instant, for the burst-pg scenario")
	fs.IntVar(&o.burstPGRate, "burst-pg-rate", 30_000, "chat.postMessage limit per minute for burst-pg: the emulator enforces it, each replica is configured with it")
	lists.replicas = fs.String("replicas", "1,2", "replicas of `nudgebot run` on one PostgreSQL database, one burst-pg run each, comma-separated")
	fs.DurationVar(&o.burstPGMax, "burst-pg-max", 15*time.Minute, "give up on a burst-pg run this long after the due instant")
	fs.IntVar(&o.sizePGPeople, "size-pg-people", 1000, "people in the size-pg scenario")
	fs.IntVar(&o.sizePGDays, "size-pg-days", 100, "days of one kept delivery per person in the size-pg scenario")
	fs.IntVar(&o.failSubs, "failover-subscribers", 10_000, "subscribers all due at once in the failover-pg scenario")
	fs.IntVar(&o.failRate, "failover-rate", 6000, "chat.postMessage limit per minute in failover-pg (the emulator's and each replica's)")
	fs.IntVar(&o.failReplicas, "failover-replicas", 2, "replicas in failover-pg: 2 kills the leader and the other takes over; 1 kills and restarts the one")
}

// parse fills o's lists from the flags as typed; on a bad one it says
// which flag (without its dash) and what is wrong with it.
func (l listFlags) parse(o *options) (string, error) {
	for _, p := range []struct {
		name  string
		parse func() error
	}{
		{"scenarios", func() (err error) { o.scenarios, err = parseScenarios(*l.scenarios); return err }},
		{"ack-rates", func() (err error) { o.ackRates, err = parseRates(*l.ackRates); return err }},
		{"faults-runs", func() (err error) { o.faultRuns, err = parseFaultRuns(*l.faultRuns); return err }},
		{"pace-limits", func() (err error) {
			o.paceLimits, err = parseInts(*l.paceLimits, 60, 600_000, "limit", "posts a minute", "300,1000,5000")
			return err
		}},
		{"pace-people", func() (err error) {
			o.pacePeople, err = parseInts(*l.pacePeople, 1, 100_000, "count", "people", "20,1000")
			return err
		}},
		{"ack-pg-rates", func() (err error) { o.ackPGRates, err = parseRates(*l.ackPGRates); return err }},
		{"replicas", func() (err error) {
			o.replicas, err = parseInts(*l.replicas, 1, 10, "replica count", "replicas (the emulator serves 10 Socket Mode connections)", "1,2")
			return err
		}},
		{"burst-bot-pct", func() (err error) { o.burstBotPct, err = parsePercents(*l.burstBotPct); return err }},
	} {
		if err := p.parse(); err != nil {
			return p.name, err
		}
	}
	return "", nil
}

// shorten is -quick: short durations and small populations for what was
// not given (set names the flags that were).
func (o *options) shorten(set map[string]bool) {
	quick := map[string]func(){
		"ack-duration":          func() { o.ackDuration = 3 * time.Second },
		"burst-subscribers":     func() { o.burstSubs = 500 },
		"subscribers":           func() { o.subs = 5000 },
		"settle":                func() { o.settle = 3 * time.Second },
		"tick-due":              func() { o.tickDue = 100 },
		"tick-repeat":           func() { o.tickRepeat = 5 },
		"nine-subscribers":      func() { o.nineSubs = 3000 },
		"faults-subscribers":    func() { o.faultSubs = 60 },
		"faults-kills":          func() { o.faultKills = 3 },
		"faults-storm":          func() { o.faultStorm = 30 },
		"faults-disconnect-for": func() { o.faultDisconnectFor = 6 * time.Second },
		"faults-disk-full":      func() { o.faultDiskFull = 8 * time.Second },
		"report":                func() { o.report = "" },
		"retention-people":      func() { o.retPeople = 50 },
		"retention-days":        func() { o.retDays = 200 },
		"retention":             func() { o.retention = 61 * 24 * time.Hour },
		"startup-subscribers":   func() { o.startSubs = 5000 },
		"startup-file-mb":       func() { o.startFileMB = 64 },
		"pace-limits":           func() { o.paceLimits = []int{5000} },
		"pace-people":           func() { o.pacePeople = []int{20, 200} },
		"migrate-subscribers":   func() { o.migSubs = 2000 },
		"migrate-deliveries":    func() { o.migDeliveries = 20_000 },
		"migrate-reflections":   func() { o.migReflections = 200 },
		"weight-runs":           func() { o.weightRuns = 1 },
		"weight-settle":         func() { o.weightSettle = 2 * time.Second },
		"burst-pg-subscribers":  func() { o.burstPGSubs = 3000 },
		"burst-pg-rate":         func() { o.burstPGRate = 6000 },
		"size-pg-days":          func() { o.sizePGDays = 5 },
		"failover-subscribers":  func() { o.failSubs = 600 },
		"failover-rate":         func() { o.failRate = 1200 },
	}
	for name, apply := range quick {
		if !set[name] {
			apply()
		}
	}
}

// check says what is wrong with the settings, or "".
func (o options) check() string {
	switch {
	case o.ackDuration < time.Second || o.ackDuration > 10*time.Minute:
		return fmt.Sprintf("-ack-duration %s is out of range: use 1s to 10m", o.ackDuration)
	case o.burstSubs < 1 || o.burstSubs > 200_000:
		return fmt.Sprintf("-burst-subscribers %d is out of range: use 1 to 200000", o.burstSubs)
	case o.burstRate < 60 || o.burstRate > 600_000:
		return fmt.Sprintf("-burst-rate %d is out of range: use 60 to 600000 a minute", o.burstRate)
	case o.subs < 1 || o.subs > 1_000_000:
		return fmt.Sprintf("-subscribers %d is out of range: use 1 to 1000000", o.subs)
	case o.settle < time.Second || o.settle > 10*time.Minute:
		return fmt.Sprintf("-settle %s is out of range: use 1s to 10m", o.settle)
	case o.tickDue < 1 || o.tickDue > o.subs:
		return fmt.Sprintf("-tick-due %d is out of range: use 1 to -subscribers (%d)", o.tickDue, o.subs)
	case o.tickRepeat < 1 || o.tickRepeat > 1000:
		return fmt.Sprintf("-tick-repeat %d is out of range: use 1 to 1000", o.tickRepeat)
	case o.nineSubs < 1 || o.nineSubs > 1_000_000:
		return fmt.Sprintf("-nine-subscribers %d is out of range: use 1 to 1000000", o.nineSubs)
	case o.nineRate < 60 || o.nineRate > 600_000:
		return fmt.Sprintf("-nine-rate %d is out of range: use 60 to 600000 a minute", o.nineRate)
	case o.nineMax < time.Minute || o.nineMax > time.Hour:
		return fmt.Sprintf("-nine-max %s is out of range: use 1m to 1h", o.nineMax)
	case o.faultSubs < 10 || o.faultSubs > 10_000:
		return fmt.Sprintf("-faults-subscribers %d is out of range: use 10 to 10000", o.faultSubs)
	case o.faultKills < 0 || o.faultKills > 100:
		return fmt.Sprintf("-faults-kills %d is out of range: use 0 to 100", o.faultKills)
	case o.faultStorm < 1 || o.faultStorm > 10_000:
		return fmt.Sprintf("-faults-storm %d is out of range: use 1 to 10000", o.faultStorm)
	case o.faultDisconnectFor < 3*time.Second || o.faultDisconnectFor > 10*time.Minute:
		return fmt.Sprintf("-faults-disconnect-for %s is out of range: use 3s to 10m", o.faultDisconnectFor)
	case o.faultDiskFull < 5*time.Second || o.faultDiskFull > 10*time.Minute:
		return fmt.Sprintf("-faults-disk-full %s is out of range: use 5s to 10m", o.faultDiskFull)
	case o.retPeople < 1 || o.retPeople > 100_000:
		return fmt.Sprintf("-retention-people %d is out of range: use 1 to 100000", o.retPeople)
	case o.retDays < 1 || o.retDays > 20*365:
		return fmt.Sprintf("-retention-days %d is out of range: use 1 to 7300", o.retDays)
	case o.retention < 61*24*time.Hour:
		return fmt.Sprintf("-retention %s is shorter than the 61 days storage.retention allows", o.retention)
	case o.retCompact < time.Hour:
		return fmt.Sprintf("-retention-compact %s is out of range: use 1h or more of simulated time", o.retCompact)
	case o.startSubs < 1 || o.startSubs > 1_000_000:
		return fmt.Sprintf("-startup-subscribers %d is out of range: use 1 to 1000000", o.startSubs)
	case o.startFileMB < 1 || o.startFileMB > 16<<10:
		return fmt.Sprintf("-startup-file-mb %d is out of range: use 1 to 16384", o.startFileMB)
	case o.migSubs < 1 || o.migSubs > 1_000_000:
		return fmt.Sprintf("-migrate-subscribers %d is out of range: use 1 to 1000000", o.migSubs)
	case o.migDeliveries < 0 || o.migDeliveries > 50_000_000:
		return fmt.Sprintf("-migrate-deliveries %d is out of range: use 0 to 50000000", o.migDeliveries)
	case o.migReflections < 0 || o.migReflections > o.migSubs:
		return fmt.Sprintf("-migrate-reflections %d is out of range: use 0 to -migrate-subscribers (%d)", o.migReflections, o.migSubs)
	case o.weightSubs < 1 || o.weightSubs > 1_000_000:
		return fmt.Sprintf("-weight-subscribers %d is out of range: use 1 to 1000000", o.weightSubs)
	case o.weightRuns < 1 || o.weightRuns > 50:
		return fmt.Sprintf("-weight-runs %d is out of range: use 1 to 50", o.weightRuns)
	case o.weightSettle < time.Second || o.weightSettle > 10*time.Minute:
		return fmt.Sprintf("-weight-settle %s is out of range: use 1s to 10m", o.weightSettle)
	case o.burstPGSubs < 1 || o.burstPGSubs > 1_000_000:
		return fmt.Sprintf("-burst-pg-subscribers %d is out of range: use 1 to 1000000", o.burstPGSubs)
	case o.burstPGRate < 60 || o.burstPGRate > 600_000:
		return fmt.Sprintf("-burst-pg-rate %d is out of range: use 60 to 600000 a minute", o.burstPGRate)
	case o.burstPGMax < time.Minute || o.burstPGMax > time.Hour:
		return fmt.Sprintf("-burst-pg-max %s is out of range: use 1m to 1h", o.burstPGMax)
	case o.sizePGPeople < 1 || o.sizePGPeople > 100_000:
		return fmt.Sprintf("-size-pg-people %d is out of range: use 1 to 100000", o.sizePGPeople)
	case o.sizePGDays < 1 || o.sizePGDays > 3650 || o.sizePGPeople*o.sizePGDays > 10_000_000:
		return fmt.Sprintf("-size-pg-days %d is out of range: use 1 to 3650, and at most 10000000 deliveries in all", o.sizePGDays)
	case o.failSubs < 30 || o.failSubs > 100_000:
		return fmt.Sprintf("-failover-subscribers %d is out of range: use 30 to 100000", o.failSubs)
	case o.failRate < 60 || o.failRate > 600_000:
		return fmt.Sprintf("-failover-rate %d is out of range: use 60 to 600000 a minute", o.failRate)
	case o.failReplicas < 1 || o.failReplicas > 2:
		return fmt.Sprintf("-failover-replicas %d is out of range: use 1 or 2", o.failReplicas)
	case !slices.Contains([]string{diskAuto, diskTmpfs, diskFsize}, o.faultDisk):
		return fmt.Sprintf("-faults-disk %q: use tmpfs, fsize or auto", o.faultDisk)
	}
	return ""
}

func parseScenarios(s string) ([]string, error) {
	return parseNames(s, scenarioOrder, "scenario")
}

func parseFaultRuns(s string) ([]string, error) {
	return parseNames(s, faultOrder, "fault run")
}

// parseNames reads a comma-separated list of names from order, without
// repeats, and returns them in order's order whatever order they came in.
func parseNames(s string, order []string, what string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(order, name) {
			return nil, fmt.Errorf("unknown %s %q: choose from %s", what, name, strings.Join(order, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s given: choose from %s", what, strings.Join(order, ", "))
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out, nil
}

func parseRates(s string) ([]int, error) {
	return parseInts(s, 1, 20_000, "rate", "commands per second", "200,1000")
}

func parsePercents(s string) ([]int, error) {
	return parseInts(s, 10, 200, "percentage", "percent", "100,98")
}

// parseInts reads a comma-separated list of whole numbers in [lo, hi].
func parseInts(s string, lo, hi int, what, unit, example string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q is not a %s: give whole numbers of %s from %d to %d, e.g. %s", f, what, unit, lo, hi, example)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s given: e.g. %s", what, example)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == echoFlag {
		return runEcho(ctx, os.Getenv, stderr)
	}
	o, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	b, err := newBench(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "nudgebot-bench:", err)
		return exitFailed
	}
	failed := false
	sections := map[string]string{}
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		b.progress("== scenario %s", name)
		sec, err := b.runScenario(ctx, name)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "nudgebot-bench: scenario %s: %v\n", name, err)
			continue
		}
		fmt.Fprintln(stdout, sec)
		sections[name] = sec
	}
	if ctx.Err() != nil {
		failed = true
		fmt.Fprintln(stderr, "nudgebot-bench: interrupted; no report written")
	} else if o.report != "" && len(sections) > 0 {
		path, err := b.writeReport(sections)
		if err != nil {
			failed = true
			fmt.Fprintln(stderr, "nudgebot-bench:", err)
		} else {
			b.progress("report written to %s", path)
		}
	}
	if err := b.close(failed); err != nil {
		fmt.Fprintln(stderr, "nudgebot-bench:", err)
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

func (b *bench) runScenario(ctx context.Context, name string) (string, error) {
	switch name {
	case "ack":
		return b.ackScenario(ctx)
	case "burst":
		return b.burstScenario(ctx)
	case "subscribers":
		return b.subscribersScenario(ctx)
	case "tick":
		return b.tickScenario(ctx)
	case "nine":
		return b.nineScenario(ctx)
	case "faults":
		return b.faultsScenario(ctx)
	case "retention":
		return b.retentionScenario(ctx)
	case "startup":
		return b.startupScenario(ctx)
	case "pace":
		return b.paceScenario(ctx)
	case "migrate":
		return b.migrateScenario(ctx)
	case "weight":
		return b.weightScenario(ctx)
	case "ack-pg":
		return b.ackPGScenario(ctx)
	case "burst-pg":
		return b.burstPGScenario(ctx)
	case "size-pg":
		return b.sizePGScenario(ctx)
	case "failover-pg":
		return b.failoverScenario(ctx)
	}
	return "", fmt.Errorf("unknown scenario %q", name)
}
