package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nudgebot/nudgebot/config"
)

// maxSocketPath is the longest path a Unix socket may have on Linux
// (sun_path is 108 bytes with its terminating NUL); macOS allows 103.
const maxSocketPath = 107

// SocketPath is where a running bot serves backups and health checks to
// the tools on the same machine: beside the database, named after it, so
// a tool given the same config finds it with no other setting.
func SocketPath(cfg config.Config) string { return cfg.Storage.Path + ".sock" }

// listenSocket listens on a Unix socket at path that only this user can
// open (mode 0600). It is made under a fresh random name and renamed into
// place once restricted, so the path is never open to others even for a
// moment. A socket left at path by a bot that died is replaced (the
// database lock, held by now, says no other bot uses it); anything else
// there is left alone and refused.
func listenSocket(path string) (net.Listener, error) {
	if info, err := os.Lstat(path); err == nil {
		if info.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: it was left as it is; move it away", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the socket a stopped nudgebot left at %s: %w", path, err)
		}
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tmp := path + "." + hex.EncodeToString(suffix)
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("the socket's path %s is too long for a Unix socket (%d bytes with room for a temporary name, at most %d): use a shorter storage.path", path, len(tmp), maxSocketPath)
	}
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", tmp, err)
	}
	// The socket file is removed by Stop under its final name.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(fmt.Errorf("restrict %s to its owner: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("move the socket into place at %s: %w", path, err))
	}
	return ln, nil
}

// socketClient talks HTTP to the bot over its socket, never through a
// proxy.
func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", path)
		},
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// ErrUnhealthy is a running bot's answer that it is not healthy (or not
// ready): the exit code is ExitFailed.
var ErrUnhealthy = errors.New("unhealthy")

// Health asks the bot running with this config, over its socket, whether
// it is healthy (/healthz) or, with ready, ready (/readyz), and returns
// its one-line answer. It is what a container's HEALTHCHECK runs: no
// shell, no curl, no port needed.
func (t Tool) Health(ctx context.Context, ready bool) (string, error) {
	sock := SocketPath(t.Config)
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("no nudgebot is running with storage.path %s: there is no socket at %s (%w)", t.Config.Storage.Path, sock, err)
	}
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://nudgebot"+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := socketClient(sock).Do(req)
	if err != nil {
		return "", fmt.Errorf("the nudgebot at %s did not answer: %w", sock, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	answer := oneLine(string(body))
	if resp.StatusCode != http.StatusOK {
		return answer, Mark(ErrUnhealthy, errors.New(answer))
	}
	return answer, nil
}
