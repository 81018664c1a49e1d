package slackemu_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/slackemu"
)

// Ensure PublishedLimits holds chat.postMessage to one a second per
// channel with bursts of three, and other methods to their tier, each
// answering 429 with a whole-second Retry-After; and that WorkspaceLimit
// adds a limit across channels on top.
func TestPublishedLimits(t *testing.T) {
	clock := newClock()
	emu := newEmu(t, slackemu.WithClock(clock.Now))
	api := newAPI(emu)
	for i := range 30 {
		emu.AddUser(slackemu.User{ID: fmt.Sprintf("U%02d", i), Name: fmt.Sprintf("u%02d", i)})
	}
	emu.PublishedLimits()
	post := func(ch string) error {
		_, _, err := api.PostMessage(ch, slack.MsgOptionText("hi", false))
		return err
	}
	limited := func(t *testing.T, err error, wantAfter time.Duration) {
		t.Helper()
		rl, ok := errors.AsType[*slack.RateLimitedError](err)
		if !ok || rl.RetryAfter != wantAfter {
			t.Fatalf("err = %v, want a RateLimitedError retrying after %s", err, wantAfter)
		}
	}

	// Per channel: a burst of three, then one a second.
	for i := range 3 {
		if err := post("U00"); err != nil {
			t.Fatalf("post %d of the burst: %v", i+1, err)
		}
	}
	limited(t, post("U00"), time.Second)
	// Every other channel is untouched, with no workspace limit set.
	for i := 1; i < 30; i++ {
		if err := post(fmt.Sprintf("U%02d", i)); err != nil {
			t.Fatalf("post to another channel: %v", err)
		}
	}
	clock.Add(time.Second)
	if err := post("U00"); err != nil {
		t.Fatalf("post a second later: %v", err)
	}

	// A tier: users.list is Tier 2, 20 a minute, one every 3 s.
	if _, err := api.GetUsersPaginated(slack.GetUsersOptionLimit(10)).Next(t.Context()); err != nil {
		t.Fatalf("first users.list: %v", err)
	}
	_, err := api.GetUserInfo("U01") // Tier 4: its own limit, not users.list's
	if err != nil {
		t.Fatalf("users.info after users.list: %v", err)
	}
	_, err = api.GetUsersPaginated(slack.GetUsersOptionLimit(10)).Next(t.Context())
	limited(t, err, 3*time.Second)

	// The workspace limit: 120 a minute, bursts of 2, across channels.
	clock.Add(time.Minute)
	emu.WorkspaceLimit(120)
	before := emu.RateLimited("chat.postMessage")
	for i := range 2 {
		if err := post(fmt.Sprintf("U%02d", i)); err != nil {
			t.Fatalf("post %d within the workspace burst: %v", i+1, err)
		}
	}
	limited(t, post("U05"), time.Second)
	if n := emu.RateLimited("chat.postMessage") - before; n != 1 {
		t.Errorf("RateLimited grew by %d, want 1", n)
	}
	clock.Add(500 * time.Millisecond)
	if err := post("U06"); err != nil {
		t.Fatalf("post half a second later (2/s): %v", err)
	}
	emu.WorkspaceLimit(0)
	for i := 10; i < 20; i++ {
		if err := post(fmt.Sprintf("U%02d", i)); err != nil {
			t.Fatalf("post with the workspace limit removed: %v", err)
		}
	}
}
