package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// figuresWidth is the room kept right of the bar for its figures.
const figuresWidth = 30

// progressBar draws a one-line progress bar for long scans on stderr. It
// draws only on a terminal: piped or redirected stderr gets nothing, so logs
// and scripts never see carriage returns or escape codes. A nil *progressBar
// draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	width int // columns of the whole line
	every time.Duration
	now   func() time.Time
	last  time.Time
	drawn bool
}

// newProgress returns a bar drawing on w when w is a terminal, nil otherwise.
func newProgress(w io.Writer, label string) *progressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width := 80
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 40 {
		width = cols
	}
	return &progressBar{w: w, label: label, width: width, every: 100 * time.Millisecond, now: time.Now}
}

// update redraws the bar for done of total bytes, at most every p.every
// (the last update, done == total, always draws).
func (p *progressBar) update(done, total int64) {
	if p == nil {
		return
	}
	t := p.now()
	if done < total && t.Sub(p.last) < p.every {
		return
	}
	p.last = t
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	figures := fmt.Sprintf(" %3.0f%% %s / %s", frac*100, shortBytes(done), shortBytes(total))
	// The bar keeps its length whatever the figures' (" 100% 1023.9 MiB /
	// 1023.9 MiB" at most), so it does not jitter as they change.
	barLen := max(p.width-len(p.label)-len(" []")-figuresWidth, 10)
	fill := int(frac * float64(barLen))
	// \r returns to the line's start; \x1b[K clears what a longer line left.
	fmt.Fprintf(p.w, "\r%s [%s%s]%s\x1b[K", p.label, strings.Repeat("#", fill), strings.Repeat(".", barLen-fill), figures)
	p.drawn = true
}

// finish erases the bar so the report starts on a clean line.
func (p *progressBar) finish() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.drawn = false
}
