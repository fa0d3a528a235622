package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/echelongraph/go-modelverify/internal/humanize"
	"github.com/echelongraph/go-modelverify/modelverify"
)

// pullLog logs one model's pull for `kubectl logs`: a line per step, per file started, retried
// and finished, and on every tick a summary (bytes so far, rate, time left), so that a slow pull
// is not mistaken for a hang, and a stalled one says how long it has been stalled. The library
// prints nothing; this is where its progress reports become log lines.
type pullLog struct {
	log *slog.Logger
	now func() time.Time
	// oci is set for an oci:// model: its downloads are layers, checked against the digests
	// the manifest names, and their total is not known up front.
	oci bool

	mu        sync.Mutex
	step      string
	total     int64                // the model's size, from the download step
	bytes     map[string]int64     // per file: bytes so far
	started   map[string]time.Time // per file: when its transfer began
	finished  map[string]bool
	downStart time.Time // when the download step began
	lastByte  time.Time // when bytes last arrived
	prevAt    time.Time // the previous summary, for the current rate
	prevBytes int64
}

func newPullLog(log *slog.Logger, now func() time.Time) *pullLog {
	return &pullLog{log: log, now: now, bytes: map[string]int64{}, started: map[string]time.Time{}, finished: map[string]bool{}}
}

// report turns one progress report into log lines.
func (p *pullLog) report(ev modelverify.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if ev.State == "retrying" {
		// A retry of a request that is not a file's transfer (resolving, listing) has no file.
		p.log.Warn("retrying after a transient failure", "file", ev.File, "bytes_so_far", ev.Bytes, "error", errText(ev.Err))
		return
	}
	if ev.File == "" {
		p.step = ev.Step
		switch ev.Step {
		case "resolve":
			if p.oci {
				p.log.Info("resolving the tag to a digest and reading the manifest")
			} else {
				p.log.Info("resolving the revision and listing the files")
			}
		case "signature":
			if p.oci {
				p.log.Info("verifying the cosign signature of the digest")
			} else {
				p.log.Info("verifying the signature")
			}
		case "download":
			p.startDownload(now, ev.Total)
			p.log.Info("downloading and checking the files", "bytes_total", ev.Total, "size", humanize.Bytes(ev.Total))
		case "scan":
			p.log.Info("scanning every file with the policy's content rules")
		}
		return
	}
	if p.step != "download" {
		// A registry pull announces no download step: its first layer report starts it.
		p.step = ev.Step
		p.startDownload(now, 0)
		p.log.Info("downloading and checking the layers")
	}
	what, digest := "file", "the Hub's digest"
	if p.oci {
		what, digest = "layer", "its digest in the manifest"
	}
	switch ev.State {
	case "started":
		p.started[ev.File] = now
		p.bytes[ev.File] = 0
		p.log.Info("downloading "+what, "file", ev.File, "size_bytes", ev.Size)
	case "bytes":
		p.bytes[ev.File] = ev.Bytes
		p.lastByte = now
	case "verified":
		p.bytes[ev.File] = ev.Size
		p.finished[ev.File] = true
		p.lastByte = now
		p.log.Info(what+" downloaded; it matches "+digest, "file", ev.File, "size_bytes", ev.Size,
			"seconds", seconds(now.Sub(p.started[ev.File])))
	case "cached":
		p.bytes[ev.File] = ev.Size
		p.finished[ev.File] = true
		p.log.Info("file already in the cache; its digest matches", "file", ev.File, "size_bytes", ev.Size)
	case "cache-corrupt":
		p.log.Warn("cached file does not match its digest; downloading it again", "file", ev.File, "error", errText(ev.Err))
	}
}

// startDownload starts the download step's clocks and counters; total is 0 when unknown.
func (p *pullLog) startDownload(now time.Time, total int64) {
	p.total, p.downStart, p.lastByte, p.prevAt, p.prevBytes = total, now, now, now, 0
}

// summary logs where the pull stands. It is called on a timer, so it is logged even when no
// progress report arrives, which is when it matters.
func (p *pullLog) summary() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.step != "download" {
		p.log.Info("pull progress", "step", p.step)
		return
	}
	var done int64
	for _, b := range p.bytes {
		done += b
	}
	rate := 0.0 // bytes per second since the previous summary
	if d := now.Sub(p.prevAt).Seconds(); d > 0 {
		rate = float64(done-p.prevBytes) / d
	}
	p.prevAt, p.prevBytes = now, done
	attrs := []any{"step", p.step, "bytes_done", done, "bytes_total", p.total,
		"files_done", len(p.finished), "rate_bytes_per_second", int64(rate), "elapsed_seconds", seconds(now.Sub(p.downStart))}
	text := humanize.Bytes(done)
	if p.total > 0 {
		attrs = append(attrs, "percent", 100*done/p.total)
		text += fmt.Sprintf(" of %s (%d%%)", humanize.Bytes(p.total), 100*done/p.total)
	}
	text += ", " + humanize.Bytes(int64(rate)) + "/s"
	// Time left is the bytes left at the average rate so far: steadier than the last interval's.
	if avg := float64(done) / now.Sub(p.downStart).Seconds(); done > 0 && done < p.total && avg > 0 {
		eta := time.Duration(float64(p.total-done) / avg * float64(time.Second)).Round(time.Second)
		attrs = append(attrs, "eta_seconds", int64(eta.Seconds()))
		text += ", about " + eta.String() + " left"
	}
	if p.total > 0 && done >= p.total {
		text += "; checking and publishing"
	} else if idle := now.Sub(p.lastByte); idle >= time.Second {
		attrs = append(attrs, "idle_seconds", seconds(idle))
		text += fmt.Sprintf("; no bytes for %s", idle.Round(time.Second))
	}
	p.log.Info("pull progress: "+text, attrs...)
}

// every logs a summary each interval until ctx ends.
func (p *pullLog) every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.summary()
		}
	}
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
