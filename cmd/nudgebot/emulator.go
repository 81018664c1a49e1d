package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nudgebot/nudgebot/slackemu"
)

// The tokens the emulator command accepts, and prints for `run` to use.
// They are not secrets: the emulator is a local stand-in for Slack.
const (
	emulatorBotToken = "xoxb-emulator-not-a-real-token"
	emulatorAppToken = "xapp-emulator-not-a-real-token"
)

// cmdEmulator serves the built-in emulator for `nudgebot run`, `backup`,
// /metrics and the health checks to be tried exactly as in production,
// with the demo's five people and their channel; what they do is typed on
// standard input.
func cmdEmulator(ctx context.Context, args []string, stdout, stderr io.Writer, _ func(string) string) error {
	return emulate(ctx, args, os.Stdin, stdout, stderr)
}

func emulate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nudgebot emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:3001", "address to serve the emulated Slack on")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: nudgebot emulator [-addr 127.0.0.1:3001]\n\nServes a local Slack workspace (the emulator the demo uses) with five people\nand one channel, and prints the SLACK_* settings that point `nudgebot run` at\nit. Then act as the people by typing lines such as `aiko /nudge start`;\n`help` lists what they can do. Ends on Ctrl-C or `quit`.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return shown{usageError("%v", err)}
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q: the emulator takes only -addr", fs.Arg(0))
	}
	e := &emulated{out: stdout}
	// Resending as Slack does (3 s, 3 retries) lets several `run`
	// processes share this workspace the way replicas share an app.
	emu, err := slackemu.Listen(slackemu.WithAddr(*addr), slackemu.WithBotToken(emulatorBotToken),
		slackemu.WithAppToken(emulatorAppToken), slackemu.OnEvent(e.event), slackemu.WithRedelivery(3*time.Second, 3))
	if err != nil {
		return usageError("%v", err)
	}
	defer emu.Close()
	e.emu = emu
	e.people = map[string]string{}
	var members []string
	for _, p := range demoTeam {
		emu.AddUser(p.User)
		e.people[p.Name] = p.ID
		members = append(members, p.ID)
	}
	emu.AddChannel(demoChannel, "leadership-team", members...)
	e.introduce()
	return e.serve(ctx, stdin)
}

// emulated is the emulator command's session: the server, and the people
// the operator acts as.
type emulated struct {
	emu    *slackemu.Server
	people map[string]string // name → user id
	outMu  sync.Mutex
	out    io.Writer
}

func (e *emulated) say(format string, args ...any) {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	fmt.Fprintf(e.out, format+"\n", args...)
}

// event prints what a person saw or did; it runs on the emulator's
// goroutine, so it only prints.
func (e *emulated) event(ev slackemu.Event) {
	line := ev.String()
	for name, id := range e.people {
		line = strings.ReplaceAll(line, id, name)
	}
	e.say("  %s", line)
}

func (e *emulated) introduce() {
	url := e.emu.URL()
	e.say("nudgebot emulator: a local Slack workspace at %s", url)
	e.say("Point nudgebot at it (config.example.yaml's slack.* settings, or these):")
	e.say("  export SLACK_API_URL=%s", url)
	e.say("  export SLACK_BOT_TOKEN=%s", emulatorBotToken)
	e.say("  export SLACK_APP_TOKEN=%s", emulatorAppToken)
	e.say("then, in another terminal: nudgebot run -config config.yaml (with metrics.addr set for /metrics, /healthz and /readyz); nudgebot backup works as in production.")
	e.say("Channel #leadership-team (%s) has everyone; add it under digests to get its digest.", demoChannel)
	var names []string
	for _, p := range demoTeam {
		names = append(names, fmt.Sprintf("%s (%s, %s)", p.Name, p.ID, p.TZ))
	}
	e.say("People: %s.", strings.Join(names, ", "))
	e.say("%s", emulatorHelp)
}

const emulatorHelp = `Act as a person, one line each:
  aiko /nudge start          a slash command (/nudge or /reflect)
  aiko click Done            press a button on the newest message showing it
  aiko says Tried it today   type in their DM with the bot
  aiko home                  open the app's Home tab
  help, quit`

// serve reads the operator's lines until quit, the end of the context,
// or, when standard input ends, the end of the context alone: the
// emulator keeps serving a bot started in the background.
func (e *emulated) serve(ctx context.Context, stdin io.Reader) error {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				lines = nil // stdin ended: serve until stopped
				continue
			}
			if strings.TrimSpace(line) == "quit" {
				return nil
			}
			e.act(ctx, line)
		}
	}
}

// act does what one line says a person does.
func (e *emulated) act(ctx context.Context, line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	if fields[0] == "help" {
		e.say("%s", emulatorHelp)
		return
	}
	id, ok := e.people[strings.ToLower(fields[0])]
	if !ok || len(fields) < 2 {
		e.say("? %q: start with a person's name (%s), or type help", line, strings.Join(slices.Sorted(maps.Keys(e.people)), ", "))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rest := strings.Join(fields[2:], " ")
	var err error
	switch verb := fields[1]; {
	case verb == "/nudge" || verb == "/reflect":
		_, err = e.emu.SlashCommand(ctx, id, "", verb, rest)
	case verb == "click" && rest != "":
		err = e.click(ctx, id, rest)
	case verb == "says" && rest != "":
		_, _, err = e.emu.PersonSays(ctx, id, "", rest)
	case verb == "home":
		_, err = e.emu.OpenAppHome(ctx, id)
	default:
		err = fmt.Errorf("%q is not something a person can do here; type help", strings.Join(fields[1:], " "))
	}
	if err != nil {
		e.say("? %s: %v", fields[0], err)
	}
}

// click presses the button labelled label on the newest message the
// person can see that shows it: their DM first, then the channel.
func (e *emulated) click(ctx context.Context, userID, label string) error {
	for _, msgs := range [][]slackemu.Message{e.emu.DM(userID), e.emu.Messages(demoChannel)} {
		for _, m := range slices.Backward(msgs) {
			for _, b := range m.Buttons() {
				if strings.EqualFold(b.Text, label) {
					_, err := e.emu.ClickButton(ctx, userID, m, b.ActionID, b.Value)
					return err
				}
			}
		}
	}
	return fmt.Errorf("no message shows a button %q", label)
}
