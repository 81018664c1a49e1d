package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/config"
)

// echoFlag runs this binary as the ack baseline instead of the bench.
const echoFlag = "-echo-client"

// echoReply is what the baseline acks every slash command with: about as
// long as the bot's help text, and naming the command so the bench's
// reply check passes for it too.
var echoReply = map[string]any{
	"response_type": "ephemeral",
	"text":          "baseline reply to /nudge help. " + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 16),
}

// runEcho is the least a Socket Mode app can do: slack-go's client,
// acking every envelope at once from its event loop, with no storage and
// no routing. Run against the same emulator at the same rate, it shows
// how much of the bot's ack latency is the harness (emulator, loopback,
// slack-go) rather than nudgebot.
func runEcho(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	api := slack.New(getenv(config.EnvBotToken),
		slack.OptionAPIURL(getenv(config.EnvAPIURL)),
		slack.OptionAppLevelToken(getenv(config.EnvAppToken)))
	smc := socketmode.New(api)
	done := make(chan error, 1)
	go func() { done <- smc.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			<-done
			return exitOK
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintln(stderr, "echo client: socket mode:", err)
				return exitFailed
			}
			return exitOK
		case evt, ok := <-smc.Events:
			if !ok {
				return exitOK
			}
			if evt.Request == nil || evt.Request.EnvelopeID == "" {
				continue
			}
			var err error
			if evt.Type == socketmode.EventTypeSlashCommand {
				err = smc.Ack(*evt.Request, echoReply)
			} else {
				err = smc.Ack(*evt.Request)
			}
			if err != nil {
				fmt.Fprintln(stderr, "echo client: ack:", err)
			}
		}
	}
}

// echoBinary is this program, which start as the echo client.
func echoBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program to run it as the ack baseline: %w", err)
	}
	return exe, nil
}
