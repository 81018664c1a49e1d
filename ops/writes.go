package ops

import (
	"context"
	"fmt"
	"time"
)

// WriteHealth is what /readyz asks about writes: whether the disk is
// refusing them, and a probe that finds out whether it takes them again.
type WriteHealth interface {
	WriteFault() (since time.Time, err error)
	ProbeWrite() error
}

// writesRefused returns why the database cannot save people's changes,
// or "" when it can. Only /readyz asks, not /healthz: a restart frees no
// disk space, so a full disk must keep the bot out of rotation and in
// the operator's sight, not restart it over and over. While writes fail,
// each call probes one small write (storage runs one at a time), so the
// bot turns ready again by itself once space returns, however idle.
func writesRefused(ctx context.Context, w WriteHealth) string {
	if w == nil {
		return ""
	}
	if _, err := w.WriteFault(); err == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.ProbeWrite() }()
	select {
	case err := <-done:
		if err == nil {
			return ""
		}
	case <-ctx.Done():
		return fmt.Sprintf("not ready: the database refuses writes and a test write did not finish within %s; check the disk", healthTimeout)
	}
	since, err := w.WriteFault()
	if err == nil {
		return ""
	}
	return fmt.Sprintf("not ready: the database refuses writes since %s, so people's changes are not saved (they are told to try again): %s: free space on the disk or fix it; nudgebot notices by itself",
		since.UTC().Format(time.RFC3339), oneLine(err.Error()))
}
