package cmd

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// progress shows a one-line status on stderr while long work runs, only
// when stderr is a terminal and --quiet is not given. A nil *progress is
// silent, so callers never check.
type progress struct {
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	label string
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(env Env, quiet bool) *progress {
	if quiet || !env.IsTerminal(env.Stderr) {
		return nil
	}
	return &progress{w: env.Stderr, now: env.Now}
}

func (p *progress) phase(label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.start = label, p.now()
}

// files reports how many files were seen so far.
func (p *progress) files(n int64) {
	p.show(func(el float64) string {
		rate := ""
		if el > 0.5 {
			rate = fmt.Sprintf(", %s files/s", humanize.Comma(int64(float64(n)/el)))
		}
		return fmt.Sprintf("%s: %s files%s", p.label, humanize.Comma(n), rate)
	})
}

// show redraws the status line with what line returns (given the seconds
// since the phase began), at most five times a second.
func (p *progress) show(line func(elapsed float64) string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if t.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = t
	fmt.Fprintf(p.w, "\r\x1b[K%s", line(t.Sub(p.start).Seconds()))
	p.shown = true
}

// done clears the status line.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// bytes reports files and bytes done against their totals, with the rate
// and the time left; with no totals yet, the index rows read.
func (p *progress) bytes(files, totalFiles, done, total int64) {
	p.show(func(el float64) string {
		if totalFiles == 0 {
			return fmt.Sprintf("%s: %s index rows read", p.label, humanize.Comma(files))
		}
		line := fmt.Sprintf("%s: %s of %s files, %s of %s", p.label, humanize.Comma(files), humanize.Comma(totalFiles),
			humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)))
		if el > 0.5 && done > 0 {
			rate := float64(done) / el
			line += fmt.Sprintf(", %s/s", humanize.IBytes(uint64(rate)))
			if total > done {
				line += fmt.Sprintf(", %s left", time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
			}
		}
		return line
	})
}

// rounds reports key-derivation progress: rounds done of total.
func (p *progress) rounds(done, total int64) {
	p.show(func(el float64) string {
		line := fmt.Sprintf("%s: deriving the key from the password", p.label)
		if total <= 0 {
			return line
		}
		line += fmt.Sprintf(", %d%%", done*100/total)
		if el > 0.5 && done > 0 && total > done {
			left := time.Duration(el * float64(total-done) / float64(done) * float64(time.Second))
			line += fmt.Sprintf(", %s left", left.Round(time.Second))
		}
		return line
	})
}

// note clears the status line and leaves a line of information on stderr
// (only where progress shows: on a terminal, without --quiet).
func (p *progress) note(msg string) {
	if p == nil {
		return
	}
	p.done()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s\n", msg)
}
