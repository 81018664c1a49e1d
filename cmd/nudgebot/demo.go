package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudgebot/nudgebot/app/scheduler"
	"github.com/nudgebot/nudgebot/bot"
	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/internal/simclock"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/slackemu"
)

// demoPerson is one simulated manager and how they answer their nudge.
type demoPerson struct {
	slackemu.User
	setup  []string // /nudge commands typed at the start
	answer string   // the button they press on their nudge, or replyPrefix and what they type in its thread
	also   string   // a follow-up button (feedback), if any
}

// replyPrefix marks an answer typed in the nudge's thread, not a button.
const replyPrefix = "reply:"

var demoTeam = []demoPerson{
	{slackemu.User{ID: "UAIKO0001", Name: "aiko", RealName: "Aiko", TZ: "Asia/Tokyo"}, []string{"start"}, "nudge_done", "nudge_helpful"},
	{slackemu.User{ID: "UMARCO001", Name: "marco", RealName: "Marco", TZ: "Europe/Berlin"}, []string{"start", "focus agenda-setter"}, "nudge_snooze_1h", ""},
	{slackemu.User{ID: "UPRIYA001", Name: "priya", RealName: "Priya", TZ: "Europe/London"}, []string{"start", "time 08:30"}, "nudge_reflect", ""},
	{slackemu.User{ID: "USAM00001", Name: "sam", RealName: "Sam", TZ: "America/New_York"}, []string{"start", "days mon-thu"}, "nudge_skip", "nudge_not_for_me"},
	{slackemu.User{ID: "ULENA0001", Name: "lena", RealName: "Lena", TZ: "America/Los_Angeles"}, []string{"start", "focus lead", "context team-channel one-to-ones"}, replyPrefix + "Tried it in my 1:1 with Sam: I asked before answering, and Sam had a better plan than mine.", ""},
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) int {
	fs := flag.NewFlagSet("nudgebot demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	step := fs.Duration("step", 150*time.Millisecond, "real time per 15 simulated minutes")
	verbose := fs.Bool("v", false, "also print the bot's own log lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nudgebot demo [-step 150ms] [-v]\n\nRuns the real bot, wired exactly as `nudgebot run`, against a built-in Slack\nemulator with five simulated managers in five time zones, and prints what\neach of them types and sees. No Slack account, config file or network needed.\nIt ends by itself after about 30 seconds, or on Ctrl-C.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ops.ExitOK
		}
		return ops.ExitConfig
	}
	d := &demo{out: stdout, names: map[string]string{}, zones: map[string]string{}, actions: make(chan func(), 64),
		mention: regexp.MustCompile(`<([#@])([CUW][A-Z0-9]+)(\|[^>]*)?>`)}
	if err := d.run(ctx, *step, *verbose, stderr); err != nil {
		fmt.Fprintln(stderr, "nudgebot demo:", err)
		return ops.ExitFailed
	}
	return ops.ExitOK
}

type demo struct {
	out     io.Writer
	outMu   sync.Mutex
	clock   *simclock.Clock
	emu     *slackemu.Server
	sched   *scheduler.Scheduler // ticked by the demo, in simulated time
	names   map[string]string    // user id → name
	zones   map[string]string
	actions chan func() // what people do in reaction to what they see
	people  map[string]demoPerson
	nudged  map[string]int
	mu      sync.Mutex

	channelName string
	// mention finds <#C…> and <@U…> in what the bot posts, which Slack
	// shows as names; built here, not at start-up of every command.
	mention *regexp.Regexp
	// fast is set while days pass unshown: everyone marks their nudge
	// done, and nothing is printed.
	fast atomic.Bool
}

func (d *demo) say(format string, args ...any) {
	if d.fast.Load() {
		return
	}
	d.outMu.Lock()
	defer d.outMu.Unlock()
	stamp := d.clock.Now().Format("Mon 15:04 MST")
	fmt.Fprintf(d.out, "[%s] %s\n", stamp, d.asSlackShows(fmt.Sprintf(format, args...)))
}

// print writes a line of the demo's own between what people see, under
// the lock say takes: the emulator's events print from its goroutines.
func (d *demo) print(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.out, format+"\n", args...)
}

// asSlackShows shows channel and people mentions as Slack shows them to
// a reader: #leadership-team, @Aiko.
func (d *demo) asSlackShows(s string) string {
	return d.mention.ReplaceAllStringFunc(s, func(m string) string {
		sub := d.mention.FindStringSubmatch(m)
		switch {
		case sub[1] == "#" && sub[2] == demoChannel:
			return "#" + d.channelName
		case sub[1] == "@" && d.names[sub[2]] != "":
			return "@" + d.names[sub[2]]
		}
		return m
	})
}

func (d *demo) name(id string) string {
	if n, ok := d.names[id]; ok {
		return n
	}
	return id
}

func (d *demo) local(id string) string {
	loc, err := time.LoadLocation(d.zones[id])
	if err != nil {
		return ""
	}
	return d.clock.Now().In(loc).Format("15:04") + " " + d.zones[id]
}

func indent(s string) string {
	s = strings.TrimSpace(s)
	return strings.ReplaceAll(s, "\n", "\n      ")
}

// onEvent turns what the emulator saw into transcript lines, and lets the
// simulated people react to their nudges. It runs on the emulator's
// goroutine, so reactions are queued, never run here.
func (d *demo) onEvent(e slackemu.Event) {
	who := d.name(e.User)
	switch e.Kind {
	case slackemu.EventPersonAction:
		if strings.HasPrefix(e.Text, "submits ") {
			return // submit has said what they typed
		}
		d.say("%s (%s) %s", who, d.local(e.User), e.Text)
	case slackemu.EventEphemeral:
		d.say("  bot → %s, only they see it:\n      %s", who, indent(e.Text))
	case slackemu.EventDM:
		msg := *e.Message
		if msg.ThreadTS != "" {
			d.say("  bot → %s's DM, in the thread:\n      %s", who, indent(msg.VisibleText()))
			return
		}
		d.say("  bot → %s's DM, at %s their time:\n      %s", who, d.local(e.User), indent(msg.VisibleText()))
		if _, isNudge := msg.Button("nudge_done"); !isNudge {
			return
		}
		d.mu.Lock()
		p, ok := d.people[e.User]
		d.nudged[e.User]++
		d.mu.Unlock()
		if answer := p.answer; ok && answer != "" {
			if strings.Contains(msg.VisibleText(), "back as promised") || d.fast.Load() {
				// Each person answers a nudge once: a snoozed one comes
				// back to be done; on the days not shown, all are done.
				answer = "nudge_done"
			}
			d.actions <- func() { d.answer(e.User, msg, answer) }
		}
	case slackemu.EventUpdated:
		d.say("  bot updates %s's DM:\n      %s", who, indent(e.Message.VisibleText()))
		msg := *e.Message
		d.mu.Lock()
		p := d.people[e.User]
		d.mu.Unlock()
		if p.also != "" && !d.fast.Load() {
			if _, ok := msg.Button(p.also); ok {
				d.actions <- func() { d.click(e.User, msg, p.also) }
			}
		}
	case slackemu.EventHomePublished:
		d.say("  bot publishes %s's App Home:\n      %s", who, indent(e.View.VisibleText()))
	case slackemu.EventViewOpened:
		d.say("  bot opens a form for %s:\n      %s", who, indent(e.View.VisibleText()))
		if form, ok := demoForms()[e.User+"/"+e.View.CallbackID]; ok {
			viewID := e.View.ID
			d.actions <- func() { d.submit(e.User, viewID, form) }
		}
	case slackemu.EventViewErrorShown:
		d.say("  bot shows %s what to fix in the form: %s", who, indent(e.Text))
	case slackemu.EventMessage:
		d.say("  bot → #%s:\n      %s", d.channelName, indent(e.Message.VisibleText()))
	case slackemu.EventFileShared:
		d.say("  bot → %s's DM: a file, %s", who, indent(e.Text))
	}
}

// demoForm is what a simulated person types into a form the bot opens:
// the values submitted (block_id → action_id → value), and the same in
// words for the transcript.
type demoForm struct {
	values map[string]map[string]string
	shown  []string
}

// demoForms are the forms the simulated people fill in, by person and
// form. A function rather than a package variable: nothing of the demo
// is built when the binary runs another command.
func demoForms() map[string]demoForm {
	const reflection = "I let Jo decide the vendor question without me. Hard not to check in, but the decision was good and Jo owned it."
	const next = "hand the roadmap review to Jo as well"
	const hearMore = "how we chose this year's two priorities"
	return map[string]demoForm{
		"UPRIYA001/reflect_modal": {
			values: map[string]map[string]string{
				"reflection": {"text": reflection}, "commitment": {"text": next},
				"share": {"choice": "named"}, "share_channel": {"channel": demoChannel},
			},
			shown: []string{"Your reflection: " + reflection, "One thing I will do next: " + next,
				"Who may see it: the team, with my name", "Which team's digest: <#" + demoChannel + ">"},
		},
		"UAIKO0001/pulse_hear_more": {
			values: map[string]map[string]string{"hear_more": {"text": hearMore}},
			shown:  []string{"What would you like to hear more about?: " + hearMore},
		},
	}
}

// submit fills in and sends the form, saying once what the person typed.
func (d *demo) submit(userID, viewID string, form demoForm) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.say("%s (%s) fills in the form and submits it:\n      %s", d.name(userID), d.local(userID), strings.Join(form.shown, "\n      "))
	if _, err := d.emu.SubmitView(ctx, userID, viewID, form.values); err != nil {
		d.say("(demo) %s could not submit: %v", d.name(userID), err)
	}
}

// vote has a person answer the clarity pulse in the team channel.
func (d *demo) vote(ctx context.Context, userID, actionID string) {
	for _, m := range d.emu.Messages(demoChannel) {
		if b, ok := m.Button(actionID); ok {
			before := len(d.emu.Ephemerals(userID))
			if _, err := d.emu.ClickButton(ctx, userID, m, actionID, b.Value); err != nil {
				d.say("(demo) %s could not vote: %v", d.name(userID), err)
				return
			}
			_ = d.emu.WaitFor(ctx, func() bool { return len(d.emu.Ephemerals(userID)) > before })
		}
	}
}

const demoChannel = "CDEMOTEAM1"

// answer clicks a button on a nudge, or types a reply in its thread.
func (d *demo) answer(userID string, msg slackemu.Message, answer string) {
	text, typed := strings.CutPrefix(answer, replyPrefix)
	if !typed {
		d.click(userID, msg, answer)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := d.emu.PersonSays(ctx, userID, msg.TS, text); err != nil {
		d.say("(demo) %s could not reply: %v", d.name(userID), err)
	}
}

func (d *demo) click(userID string, msg slackemu.Message, actionID string) {
	btn, ok := msg.Button(actionID)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.emu.ClickButton(ctx, userID, msg, actionID, btn.Value); err != nil {
		d.say("(demo) %s could not click %s: %v", d.name(userID), btn.Text, err)
	}
}

// settle lets everything that follows from what just happened happen
// before simulated time moves on: people react to what they saw, the
// bot finishes what that started, and so on until all is quiet. So the
// transcript reads in cause-and-effect order however slow the machine.
func (d *demo) settle(ctx context.Context, b interface{ Quiet() bool }) {
	quietFor := 0
	for quietFor < 3 && ctx.Err() == nil {
		select {
		case f := <-d.actions:
			f()
			quietFor = 0
			continue
		default:
		}
		if b.Quiet() {
			quietFor++ // an ack may still be on its way to starting work
		} else {
			quietFor = 0
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func (d *demo) command(ctx context.Context, userID, text string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd, rest, _ := strings.Cut(text, " ")
	before := len(d.emu.Ephemerals(userID))
	if _, err := d.emu.SlashCommand(cctx, userID, "", cmd, rest); err != nil {
		d.say("(demo) %s: %v", d.name(userID), err)
		return
	}
	// A person reads the answer before typing the next command.
	_ = d.emu.WaitFor(cctx, func() bool { return len(d.emu.Ephemerals(userID)) > before })
}

func (d *demo) run(ctx context.Context, step time.Duration, verbose bool, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Sunday 22:30 UTC: Tokyo's Monday morning comes first, Los Angeles's last.
	d.clock = simclock.New(time.Date(2026, 11, 29, 22, 30, 0, 0, time.UTC))
	d.people = map[string]demoPerson{}
	d.nudged = map[string]int{}
	for _, p := range demoTeam {
		d.names[p.ID] = p.RealName
		d.zones[p.ID] = p.TZ
		d.people[p.ID] = p
	}
	const botToken, appToken = "xoxb-demo-not-a-real-token", "xapp-demo-not-a-real-token"
	// The emulator keeps real time: a trigger id lives three real seconds,
	// however fast the simulated day runs.
	d.emu = slackemu.New(slackemu.WithBotToken(botToken),
		slackemu.WithAppToken(appToken), slackemu.OnEvent(d.onEvent))
	defer d.emu.Close()
	var members []string
	for _, p := range demoTeam {
		d.emu.AddUser(p.User)
		members = append(members, p.ID)
	}
	d.channelName = "leadership-team"
	d.emu.AddChannel(demoChannel, d.channelName, members...)

	dir, err := os.MkdirTemp("", "nudgebot-demo-")
	if err != nil {
		return fmt.Errorf("temporary database folder: %w", err)
	}
	defer os.RemoveAll(dir)
	w, stop, err := d.startBot(ctx, dir, botToken, appToken, verbose, stderr)
	if err != nil {
		return err
	}
	b := w.Bot
	defer stop()
	d.print("nudgebot demo: the real bot, wired exactly as `nudgebot run`, talking Socket Mode")
	d.print("and the Web API to a built-in Slack emulator. Five managers in five time zones;")
	d.print("simulated time moves 15 minutes every %s.\n", step)
	d.say("nudgebot connected over Socket Mode")

	if err := d.morning(ctx, b, step); err != nil {
		return err
	}
	d.afterwards(ctx, b)
	d.print("\n— Tuesday to Friday, not shown: each gets their nudge at their own time and marks it done —")
	d.print("(%s)", d.fastForward(ctx, b, w.DB, fridayDigest))
	d.friday(ctx, b, w.DB)
	d.print("\nDone: %d nudge messages delivered over two weeks (snoozed ones come back), each at 09:00 or the time the person chose, in their own zone.", d.nudges())
	d.print("Run it for real: see README.md, \"Running against a real workspace\".")
	return nil
}

// nudges counts the nudge messages delivered so far.
func (d *demo) nudges() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	total := 0
	for _, n := range d.nudged {
		total += n
	}
	return total
}

// dueIndex is where the demo finds when anyone is next due.
type dueIndex interface {
	OldestDue() (time.Time, bool, error)
}

// fastForward lets simulated days pass unshown until until: the clock
// jumps from one person's nudge time to the next, everyone marks their
// nudge done, and the digest that follows has a real week to count.
func (d *demo) fastForward(ctx context.Context, b *bot.Bot, due dueIndex, until time.Time) string {
	before := d.nudges()
	d.fast.Store(true)
	defer d.fast.Store(false)
	for range 500 { // about 50 nudges a week; a bound, not a budget
		at, ok, err := due.OldestDue()
		if err != nil || !ok || !at.Before(until) || ctx.Err() != nil {
			break
		}
		if at.After(d.clock.Now()) {
			d.clock.Set(at)
		} else {
			d.clock.Add(15 * time.Minute) // still due after a tick: move on
		}
		d.sched.Tick(ctx)
		d.settle(ctx, b)
	}
	d.clock.Set(until)
	n := d.nudges() - before
	return fmt.Sprintf("%d %s delivered and marked done", n, plural(n, "nudge", "nudges"))
}

// plural picks the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// startBot wires the real bot, as `nudgebot run` does, against the
// emulator, and waits until it is connected. stop shuts it down.
func (d *demo) startBot(ctx context.Context, dir, botToken, appToken string, verbose bool, stderr io.Writer) (wiring, func(), error) {
	env := map[string]string{
		config.EnvBotToken: botToken, config.EnvAppToken: appToken,
		config.EnvAPIURL: d.emu.URL(), config.EnvStoragePath: filepath.Join(dir, "demo.db"),
	}
	demoYAML := "nudges:\n  schedule: \"0 9 * * MON-FRI\"\ndigests:\n  - {channel: " + demoChannel + ", schedule: \"0 16 * * FRI\", timezone: Europe/London}\nadmins: [UPRIYA001]\n" +
		// A simulated week passes in seconds, which Slack's published
		// pacing (about a post a second) would stretch into minutes; the
		// emulator, unlike Slack, takes calls as fast as they come.
		"slack_limits: {chat.postMessage: 6000, chat.update: 6000, conversations.open: 6000, conversations.history: 6000}\n"
	cfg, err := config.Parse("(demo)", []byte(demoYAML), func(k string) string { return env[k] })
	if err != nil {
		return wiring{}, nil, fmt.Errorf("demo config: %w", err)
	}
	logOut := io.Discard
	if verbose {
		logOut = stderr
	}
	ready := make(chan struct{})
	w, err := wire(cfg, newLogger(cfg.Log, logOut), func(k string) string { return env[k] }, func(o *knobs) {
		o.Now = d.clock.Now
		o.ManualTicks = true // the demo drives the scheduler itself, in simulated time
		// Simulated people act faster than real ones; the allowance is
		// for real time.
		o.Budget, o.BudgetBurst = 1_000_000, 1_000_000
		o.ReadyFunc = func() { close(ready) }
	})
	if err != nil {
		return wiring{}, nil, err
	}
	runCtx, stopBot := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- w.Bot.Run(runCtx) }()
	stop := func() {
		stopBot()
		<-runDone
		_ = w.Close() // a temporary database, removed next
	}
	d.sched = w.Scheduler
	select {
	case <-ready:
		return w, stop, nil
	case <-ctx.Done():
		stop()
		return wiring{}, nil, errors.New("the bot did not connect to the emulator")
	}
}

// morning has everyone set up, then runs a working day round the world:
// Tokyo, Berlin, London, New York and Los Angeles each get their nudge
// at their own morning and answer it.
func (d *demo) morning(ctx context.Context, b *bot.Bot, step time.Duration) error {
	first := demoTeam[2]
	d.command(ctx, first.ID, "/nudge help")
	for _, p := range demoTeam {
		for _, c := range p.setup {
			d.command(ctx, p.ID, "/nudge "+c)
		}
	}
	d.command(ctx, first.ID, "/nudge status")
	until := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	ticker := time.NewTicker(step)
	defer ticker.Stop()
	for d.clock.Now().Before(until) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		d.clock.Add(15 * time.Minute)
		d.sched.Tick(ctx)
		d.settle(ctx, b)
	}
	return nil
}

// afterwards shows reflections, status and App Home.
func (d *demo) afterwards(ctx context.Context, b *bot.Bot) {
	d.print("\n— Reflections: private by default, sealed at rest —")
	aiko, marco := demoTeam[0].ID, demoTeam[1].ID
	d.command(ctx, aiko, "/reflect Conceded a fair point to the platform team; the meeting turned from a fight into planning.")
	d.command(ctx, marco, "/reflect <!channel> I still run every agenda myself")
	d.command(ctx, aiko, "/reflect list")
	d.command(ctx, aiko, "/reflect export")
	d.command(ctx, marco, "/nudge status")

	d.print("\n— Aiko opens the app's Home tab —")
	if _, err := d.emu.OpenAppHome(ctx, aiko); err != nil {
		d.say("(demo) could not open the home tab: %v", err)
	} else if err := d.emu.WaitFor(ctx, func() bool { _, ok := d.emu.HomeView(aiko); return ok }); err != nil {
		d.say("(demo) the home tab never showed: %v", err)
	}
	d.settle(ctx, b)
}

// fridayDigest is when the team's first digest is posted.
var fridayDigest = time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)

// friday posts the team digest, has everyone answer the clarity pulse,
// and a week later, the week lived, shows its result.
func (d *demo) friday(ctx context.Context, b *bot.Bot, due dueIndex) {
	d.print("\n— Friday: the team digest and the clarity pulse —")
	d.clock.Set(fridayDigest)
	d.sched.RunDigest(ctx, demoChannel)
	aiko := demoTeam[0].ID
	votes := []string{"pulse_vote_4", "pulse_vote_3", "pulse_vote_4", "pulse_vote_2", "pulse_vote_5"}
	for i, p := range demoTeam {
		d.vote(ctx, p.ID, votes[i])
	}
	// Aiko also says what she would like to hear more about: a form,
	// which she fills in as soon as it opens.
	for _, m := range d.emu.Messages(demoChannel) {
		if _, ok := m.Button("pulse_hear_more"); ok {
			d.click(aiko, m, "pulse_hear_more")
		}
	}
	d.settle(ctx, b)
	d.print("\n— The next week, not shown: each gets their nudge at their own time and marks it done —")
	d.print("(%s)", d.fastForward(ctx, b, due, fridayDigest.AddDate(0, 0, 7)))
	d.print("\n— A week later: the next digest shows the pulse, anonymously —")
	d.sched.RunDigest(ctx, demoChannel)
	d.settle(ctx, b)
}
