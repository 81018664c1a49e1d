package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/storage"
)

// Check tries what `nudgebot run` does at start, without changing
// anything: that the database's directory exists and nudgebot can create
// files in it, that the file opens for writing and passes the
// consistency check, that the key opens what is sealed in it, and that
// Slack accepts both tokens. What is fine is said on stdout; each
// problem is returned, marked with its kind for ExitCode. A file held by
// a running nudgebot is not a problem: check says so and skips the file.
func (t Tool) Check(ctx context.Context, stdout io.Writer) []error {
	var problems []error
	if t.Database != nil {
		problems = t.Database(ctx, stdout)
	} else {
		problems = t.checkDatabase(stdout)
	}
	return append(problems, t.checkSlack(ctx, stdout)...)
}

func (t Tool) checkDatabase(stdout io.Writer) []error {
	path := t.Config.Storage.Path
	if err := checkDirectory(filepath.Dir(path)); err != nil {
		return []error{err}
	}
	keys, err := toolKeys(t.Config, t.Getenv)
	if err != nil {
		return []error{err}
	}
	_, statErr := os.Stat(path)
	if keys == nil {
		if err := t.checkNoKey(path, stdout); err != nil {
			return []error{err}
		}
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "database %s does not exist yet: `nudgebot run` creates it\n", path)
		return nil
	}
	// Opening for writing, then closing at once, changes nothing (no lock
	// is taken) and finds a read-only file or file system.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return []error{fmt.Errorf("database %s cannot be opened for writing (%w): it must be writable by the user nudgebot runs as", path, err)}
	}
	_ = f.Close()
	db, err := storage.Open(path, storage.Options{Timeout: time.Second, ReadOnly: true, Keys: keys})
	if errors.Is(err, storage.ErrInUse) {
		fmt.Fprintf(stdout, "database %s is held by a running nudgebot (or another process): that is expected while the bot runs; stop it to check the file itself, or use `nudgebot backup` and check the copy\n", path)
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("database: %w", err)}
	}
	defer db.Close()
	// With the keys, Check also opens every reflection, so one whose seal
	// no longer matches its record (a flipped share setting) is reported.
	if err := db.Check(); err != nil {
		return []error{fmt.Errorf("database: %w", err)}
	}
	fmt.Fprintf(stdout, "database ok: %s\n", path)
	return nil
}

// checkDirectory tries what run does first: create a file in the
// database's directory (the database itself, or nudgebot.key). A file
// created exclusively under a random name and removed at once leaves
// nothing behind.
func checkDirectory(dir string) error {
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return Mark(ErrNoDatabase, fmt.Errorf("database directory %s does not exist or is not a directory: create it (owned by the user nudgebot runs as) or fix storage.path", dir))
	}
	probe, err := os.CreateTemp(dir, ".nudgebot-check-*")
	if err != nil {
		return fmt.Errorf("nudgebot cannot create files in %s (%w): give the user nudgebot runs as write access, or check the file system is not read-only", dir, err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return nil
}

// checkNoKey says what run will do with no key configured: refuse, when
// the database holds data sealed with a key (which it names), else
// create nudgebot.key beside the database. A database another process
// holds cannot be looked into; the bot holding it has its key.
func (t Tool) checkNoKey(path string, stdout io.Writer) error {
	beside, _ := keySource(t.Config, t.getenv)
	switch err := sealedWithout(path); {
	case errors.Is(err, storage.ErrKeyMissing):
		return Mark(ErrKey, fmt.Errorf("%w; no key was found (%s and storage.key_file are not set, %s does not exist)", err, storage.EnvSecretKey, beside))
	case err == nil:
		fmt.Fprintf(stdout, "no reflection key is configured: `nudgebot run` will create %s beside the database; set %s or storage.key_file to keep the key apart from the data\n", beside, storage.EnvSecretKey)
	}
	return nil
}

func (t Tool) checkSlack(ctx context.Context, stdout io.Writer) []error {
	cfg := t.Config
	var problems []error
	hc := &http.Client{Timeout: 15 * time.Second}
	api := slack.New(cfg.Slack.BotToken.Reveal(), slack.OptionAPIURL(cfg.Slack.APIURL), slack.OptionHTTPClient(hc),
		slack.OptionAppLevelToken(cfg.Slack.AppToken.Reveal()))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if resp, err := api.AuthTestContext(cctx); err != nil {
		problems = append(problems, fmt.Errorf("bot token: auth.test failed: %w (check SLACK_BOT_TOKEN and that the app is installed)", err))
	} else {
		fmt.Fprintf(stdout, "bot token ok: %s in workspace %s\n", resp.User, resp.Team)
	}
	if _, _, err := socketmode.New(api).OpenContext(cctx); err != nil {
		problems = append(problems, fmt.Errorf("app token: apps.connections.open failed: %w (check SLACK_APP_TOKEN has connections:write and Socket Mode is on)", err))
	} else {
		fmt.Fprintln(stdout, "app token ok: socket mode connection can be opened")
	}
	return problems
}

// BotTokenRefused asks Slack (auth.test) whether it accepts the bot
// token, for `run` at start: a wrong or revoked bot token would otherwise
// leave a bot connected over Socket Mode (which takes the app token) and
// healthy to every probe, failing each post. It returns an error marked
// ErrSlackAuth only when Slack answers that the token is refused; when
// Slack cannot be reached it returns nil, as the bot retries by itself.
func BotTokenRefused(ctx context.Context, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	api := slack.New(cfg.Slack.BotToken.Reveal(), slack.OptionAPIURL(cfg.Slack.APIURL), slack.OptionHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	_, err := api.AuthTestContext(ctx)
	if err != nil && ExitCode(err) == ExitSlackAuth {
		return Mark(ErrSlackAuth, fmt.Errorf("the bot token was refused: auth.test: %w (check SLACK_BOT_TOKEN and that the app is installed)", err))
	}
	return nil
}
