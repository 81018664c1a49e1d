package bot

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/nudgebot/nudgebot/app"
	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// refusingDisk is the database on a disk that refuses the writes a
// person's actions make, answering as storage does then.
type refusingDisk struct{ *storage.DB }

func diskRefused() error {
	return &storage.WriteError{Path: "nudgebot.db", Err: &os.PathError{Op: "write", Path: "nudgebot.db", Err: syscall.ENOSPC}}
}

func (refusingDisk) UpdateSubscriber(string, func(*nudges.Subscriber) error) (nudges.Subscriber, error) {
	return nudges.Subscriber{}, diskRefused()
}

func (refusingDisk) RecordOutcome(string, func(*nudges.Delivery, *nudges.Subscriber) error) (nudges.Delivery, nudges.Subscriber, error) {
	return nudges.Delivery{}, nudges.Subscriber{}, diskRefused()
}

func (refusingDisk) SaveReflection(nudges.Reflection) (nudges.Reflection, error) {
	return nudges.Reflection{}, diskRefused()
}

// Ensure each way a person changes something, when the disk refuses the
// write, is answered that nothing was saved and to try again: a
// setting, a reflection (with its words back: a slash command's text is
// nowhere else to copy) and a click.
func TestRefusedWriteToldNothingSaved(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) }
	db := storagetest.Open(t, storage.Options{Now: now})
	cat, err := nudges.DefaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sched, err := cronspec.Parse("0 9 * * MON-FRI")
	if err != nil {
		t.Fatal(err)
	}
	disk := refusingDisk{db}
	sl := NewSlack(SlackOptions{BotToken: "xoxb-test", AppToken: "xapp-test", api: newFakeAPI(now)})
	core, err := app.New(
		app.Ports{Subscribers: disk, Settings: db, Deliveries: disk, Reflections: disk, Digests: db, Eraser: db, Exporter: db, Messenger: sl},
		app.Config{Catalog: cat, Calendar: nudges.Calendar{Default: sched, CatchUp: 2 * time.Hour, Fallback: time.UTC}, Clock: now},
	)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{AppToken: "xapp-test", Slack: sl, Core: core, Handled: db, Now: now})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var responded []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct{ Text string }
		_ = json.Unmarshal(body, &msg)
		mu.Lock()
		responded = append(responded, msg.Text)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	slash := func(command, text string) string {
		_, work := b.routeSlash(slack.SlashCommand{Command: command, Text: text, UserID: "UANA"})
		if work == nil {
			t.Fatalf("%s %s was answered at once", command, text)
		}
		return work(context.Background()).Text
	}
	click := func(action string) string {
		cb := slack.InteractionCallback{User: slack.User{ID: "UANA"}, ResponseURL: hook.URL}
		b.answerNudge(context.Background(), cb, app.Person("UANA"), "D-UANA-1", nudgeAnswers[action])
		mu.Lock()
		defer mu.Unlock()
		if len(responded) == 0 {
			t.Fatalf("clicking %s was not answered", action)
		}
		return responded[len(responded)-1]
	}
	tests := []struct {
		name string
		got  func() string
		want []string
	}{
		{"SetTime", func() string { return slash("/nudge", "time 08:30") }, []string{"nothing was saved", "try again"}},
		{"Subscribe", func() string { return slash("/nudge", "start") }, []string{"nothing was saved", "try again"}},
		{"Reflect", func() string { return slash("/reflect", "Asked before answering") }, []string{"nothing was saved", "try again", "Your words, so nothing is lost", "Asked before answering"}},
		{"ClickDone", func() string { return click(actDone) }, []string{"nothing was saved", "click again"}},
		{"ClickSnooze", func() string { return click(actSnoozeHour) }, []string{"nothing was saved", "click again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.got()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer %q lacks %q", got, w)
				}
			}
		})
	}
}
