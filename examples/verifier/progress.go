package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/internal/humanize"
)

// Progress on a stderr that is not a terminal (CI logs, kubectl logs) is a log: a line per step
// and per file, and a summary every interval, in the format examples/kserve's initializer logs,
// so that work is seen moving. HF_HUB_DISABLE_PROGRESS_BARS (huggingface_hub's switch) turns
// bars and log lines off; MODELVERIFY_PROGRESS_INTERVAL (as for the initializer) sets the
// interval, 0 for no summaries.
const (
	disableProgressEnv      = "HF_HUB_DISABLE_PROGRESS_BARS"
	progressIntervalEnv     = "MODELVERIFY_PROGRESS_INTERVAL"
	defaultProgressInterval = 10 * time.Second
)

// progressBar shows a command's progress on stderr: on a terminal, one line redrawn in place
// with '\r'; elsewhere, log lines (see above). The library reports progress through callbacks;
// this is the only place it is shown. A nil *progressBar shows nothing.
type progressBar struct {
	w     io.Writer
	label string
	every time.Duration
	// log is true when stderr is not a terminal: lines, not a bar.
	log bool
	now func() time.Time
	// stop ends the summaries' timer.
	stop chan struct{}

	mu       sync.Mutex
	files    map[string][2]int64 // per download: bytes so far, size
	done     int64
	total    int64
	lastDraw time.Time
	drawn    bool
	// For the log's summaries: when the work began, and the previous summary's bytes and time.
	started   time.Time
	prevAt    time.Time
	prevBytes int64
	stopped   bool
}

// newProgress returns a bar on stderr when it is a terminal, a progress log when it is not, and
// nil when progress is turned off.
func newProgress(e *env, label string) *progressBar {
	if e.noProgress {
		return nil
	}
	now := e.now
	if now == nil {
		now = time.Now
	}
	if e.terminal {
		return &progressBar{w: e.stderr, label: label, every: 100 * time.Millisecond, files: map[string][2]int64{}, now: now}
	}
	p := &progressBar{w: e.stderr, label: label, every: e.progressEvery, log: true, now: now, files: map[string][2]int64{}}
	p.started, p.prevAt = now(), now()
	if p.every > 0 {
		p.stop = make(chan struct{})
		go p.summaries()
	}
	return p
}

// summaries logs a summary each interval until finish: on a timer, so that a stalled transfer
// still shows, as the time since the last summary with no bytes.
func (p *progressBar) summaries() {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.summary()
		}
	}
}

// summary logs where the work stands: bytes so far of the total, the rate since the previous
// summary, and the time left at the average rate so far (steadier than the last interval's).
func (p *progressBar) summary() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return // a tick that raced finish: the work is over, and its result printed
	}
	now := p.now()
	if p.done == 0 && p.total == 0 {
		// A step that counts no bytes (resolving, verifying the signature): say it still runs.
		fmt.Fprintf(p.w, "verifier: progress: still %s after %s\n", p.label, now.Sub(p.started).Round(time.Second))
		return
	}
	text := p.label + " " + humanize.Bytes(p.done)
	if p.total > 0 {
		text += fmt.Sprintf(" of %s (%d%%)", humanize.Bytes(p.total), 100*min(p.done, p.total)/p.total)
	}
	rate := 0.0
	if d := now.Sub(p.prevAt).Seconds(); d > 0 {
		rate = float64(p.done-p.prevBytes) / d
	}
	p.prevAt, p.prevBytes = now, p.done
	text += ", " + humanize.Bytes(int64(rate)) + "/s"
	if avg := float64(p.done) / now.Sub(p.started).Seconds(); p.done > 0 && p.done < p.total && avg > 0 {
		eta := time.Duration(float64(p.total-p.done) / avg * float64(time.Second)).Round(time.Second)
		text += ", about " + eta.String() + " left"
	}
	fmt.Fprintf(p.w, "verifier: progress: %s\n", text)
}

// fileDone logs, in a log, that one file is done: downloaded and checked, or found in the cache.
func (p *progressBar) fileDone(name string, size int64, cached bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[name] = [2]int64{size, size}
	p.sum()
	if !p.log {
		return
	}
	how := "downloaded; it matches the Hub's digest"
	if cached {
		how = "already in the cache; its digest matches"
	}
	fmt.Fprintf(p.w, "verifier: %s (%s) %s\n", name, humanize.Bytes(size), how)
}

// clear takes the bar off its line, so that a message can be printed; it is drawn again at
// the next report. A log has nothing to clear.
func (p *progressBar) clear() {
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
	p.sum()
	p.maybeDraw(false)
}

func (p *progressBar) sum() {
	p.done, p.total = 0, 0
	for _, f := range p.files {
		p.done += f[0]
		p.total += f[1]
	}
}

// step changes the label (the stage of a verification).
func (p *progressBar) step(label string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log && label != p.label {
		fmt.Fprintf(p.w, "verifier: %s\n", label)
		// The rate and time left are the step's own.
		p.started, p.prevAt, p.prevBytes = p.now(), p.now(), p.done
	}
	p.label = label
	p.maybeDraw(true)
}

// finish clears the line, so that what follows starts on a clean one, and ends the summaries.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil && !p.stopped {
		close(p.stop)
		p.stopped = true
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progressBar) maybeDraw(force bool) {
	if p.log {
		return
	}
	now := p.now()
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
			return fmt.Sprintf("%s %s", label, humanize.Bytes(done))
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
	return fmt.Sprintf("%s [%s] %3d%% %s / %s", label, bar, 100*done/total, humanize.Bytes(done), humanize.Bytes(total))
}
