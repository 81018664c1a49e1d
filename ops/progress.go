package ops

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// progress reports a long copy on stderr: redrawn in place at most ten
// times a second on a terminal, and as a plain line at each quarter
// otherwise, so logs and cron mail stay short.
type progress struct {
	w      io.Writer
	tty    bool
	what   string
	total  int64
	format func(int64) string

	n        int64
	drawn    time.Time
	quarters int64
	started  bool
}

func newProgress(w io.Writer, what string, total int64, format func(int64) string) *progress {
	return &progress{w: w, tty: isTerminal(w), what: what, total: total, format: format}
}

func (p *progress) Write(b []byte) (int, error) {
	p.Add(int64(len(b)))
	return len(b), nil
}

func (p *progress) Add(n int64) {
	p.n += n
	if p.tty {
		if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
			p.drawn = now
			p.draw()
		}
		return
	}
	if p.total <= 0 {
		return
	}
	if q := min(p.n*4/p.total, 3); q > p.quarters {
		p.quarters = q
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.what, q*25, p.format(p.n), p.format(p.total))
	}
}

func (p *progress) draw() {
	p.started = true
	if p.total > 0 {
		pct := min(p.n*100/p.total, 100)
		fmt.Fprintf(p.w, "\r\033[K%s: %s of %s (%d%%)", p.what, p.format(p.n), p.format(p.total), pct)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %s", p.what, p.format(p.n))
}

// Done ends the terminal line, if one was drawn.
func (p *progress) Done() {
	if p.tty && p.started {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal, where redrawing a line in
// place reads well.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func ByteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func count(n int64) string { return strconv.FormatInt(n, 10) }
