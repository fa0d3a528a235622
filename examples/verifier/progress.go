package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws one line of progress on a terminal, redrawn in place with '\r'. The library
// reports progress through callbacks; this is the only place it is drawn. A nil *progressBar
// draws nothing, which is what every command gets when stderr is not a terminal.
type progressBar struct {
	w     io.Writer
	label string
	every time.Duration

	mu       sync.Mutex
	files    map[string][2]int64 // per download: bytes so far, size
	done     int64
	total    int64
	lastDraw time.Time
	drawn    bool
}

// newProgress returns a bar on stderr when it is a terminal, and nil otherwise.
func newProgress(e *env, label string) *progressBar {
	if !e.terminal {
		return nil
	}
	return &progressBar{w: e.stderr, label: label, every: 100 * time.Millisecond, files: map[string][2]int64{}}
}

// set reports overall progress (hashing: bytes done of total).
func (p *progressBar) set(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	p.maybeDraw(done == total)
}

// file reports one file's download progress; the bar shows the sum over files.
func (p *progressBar) file(name string, bytes, size int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[name] = [2]int64{bytes, size}
	p.done, p.total = 0, 0
	for _, f := range p.files {
		p.done += f[0]
		p.total += f[1]
	}
	p.maybeDraw(false)
}

// step changes the label (the stage of a verification).
func (p *progressBar) step(label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label = label
	p.maybeDraw(true)
}

// finish clears the line, so that what follows starts on a clean one.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progressBar) maybeDraw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.lastDraw) < p.every {
		return
	}
	p.lastDraw = now
	fmt.Fprint(p.w, "\r\033[K"+renderBar(p.label, p.done, p.total, 30))
	p.drawn = true
}

// renderBar renders "label [=====>    ]  45% 12.3 MB / 27.0 MB" for a bar width characters wide.
func renderBar(label string, done, total int64, width int) string {
	if total <= 0 {
		if done > 0 {
			return fmt.Sprintf("%s %s", label, humanBytes(done))
		}
		return label
	}
	if done > total {
		done = total
	}
	filled := int(int64(width) * done / total)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	return fmt.Sprintf("%s [%s] %3d%% %s / %s", label, bar, 100*done/total, humanBytes(done), humanBytes(total))
}

// humanBytes is n in decimal units, as download tools print sizes.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}
