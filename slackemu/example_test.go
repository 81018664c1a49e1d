package slackemu_test

import (
	"fmt"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/slackemu"
)

// A bot built on slack-go talks to the emulator as it would to Slack; the
// emulator shows what a person would see.
func Example() {
	emu := slackemu.New(slackemu.OnEvent(func(e slackemu.Event) { fmt.Println(e) }))
	defer emu.Close()
	emu.AddUser(slackemu.User{ID: "U1", Name: "ada", TZ: "Europe/London"})

	api := slack.New("xoxb-demo", slack.OptionAPIURL(emu.URL()), slack.OptionAppLevelToken("xapp-demo"))
	if _, _, err := api.PostMessage("U1", slack.MsgOptionText("Ask one question you have never asked your team.", false)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(emu.DM("U1")), "message in", emu.IMChannel("U1"))
	// Output:
	// bot → U1 (dm): Ask one question you have never asked your team.
	// 1 message in D1
}
