package digest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// DefaultBlockSize is the size of each ReadAt. Large blocks keep the number of system calls low
// and let the kernel read ahead; a few MiB per worker is all the memory the hasher holds.
const DefaultBlockSize = 4 << 20

// Task is one unit of hashing: the byte range [Offset, Offset+Length) of the file at Path.
// A whole file is a task with Offset 0 and Length equal to its size.
type Task struct {
	Path   string
	Offset int64
	Length int64
}

// Update reports progress: Done of Total bytes have been hashed.
type Update struct {
	Done  int64
	Total int64
}

// Hasher hashes many tasks with one bounded pool of workers. The zero value is not usable; call
// New. A Hasher may be used for many calls to Hash, one at a time or concurrently.
type Hasher struct {
	alg       Algorithm
	workers   int
	blockSize int
	progress  func(Update)
	open      func(i int, t Task) (ReaderAtCloser, error) // os.Open, or the caller's (WithOpen)
}

// ReaderAtCloser is what the hasher reads a task's file through.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Option configures a Hasher.
type Option func(*Hasher)

// WithWorkers sets how many tasks are hashed at once. The default is GOMAXPROCS.
func WithWorkers(n int) Option { return func(h *Hasher) { h.workers = n } }

// WithBlockSize sets the size of each read. The default is DefaultBlockSize.
func WithBlockSize(n int) Option { return func(h *Hasher) { h.blockSize = n } }

// WithOpen replaces os.Open for the tasks' files, once per task, so that a caller who must look
// at each file anyway (to scan its format, to note its metadata) does it on the file the hasher
// reads, and opens it once.
func WithOpen(open func(path string) (ReaderAtCloser, error)) Option {
	return func(h *Hasher) { h.open = func(_ int, t Task) (ReaderAtCloser, error) { return open(t.Path) } }
}

// WithOpenTask is WithOpen for a caller who keeps something per task: open gets the task's
// index in the tasks given to Hash, and the task.
func WithOpenTask(open func(i int, t Task) (ReaderAtCloser, error)) Option {
	return func(h *Hasher) { h.open = open }
}

// WithProgress asks for a report after every block. Calls are serialized, and Done only grows.
func WithProgress(fn func(Update)) Option { return func(h *Hasher) { h.progress = fn } }

// New returns a Hasher for the algorithm.
func New(alg Algorithm, opts ...Option) (*Hasher, error) {
	if _, err := ParseAlgorithm(string(alg)); err != nil || alg == "" {
		return nil, fmt.Errorf("digest: unsupported hash algorithm %q", string(alg))
	}
	h := &Hasher{alg: alg, workers: runtime.GOMAXPROCS(0), blockSize: DefaultBlockSize,
		open: func(_ int, t Task) (ReaderAtCloser, error) { return os.Open(t.Path) }}
	for _, opt := range opts {
		opt(h)
	}
	if h.workers < 1 {
		h.workers = 1
	}
	if h.blockSize < 4096 {
		h.blockSize = 4096
	}
	return h, nil
}

// Algorithm returns the hasher's algorithm.
func (h *Hasher) Algorithm() Algorithm { return h.alg }

// Hash returns the digest of each task, in the order of tasks. The tasks are started largest
// first, so that one long file does not end up alone on one core at the end while the others
// sit idle. The first error cancels the rest.
func (h *Hasher) Hash(ctx context.Context, tasks []Task) ([][]byte, error) {
	var total, longest int64
	for i, t := range tasks {
		if t.Offset < 0 || t.Length < 0 {
			return nil, fmt.Errorf("digest: task %d (%s): negative range [%d,+%d)", i, t.Path, t.Offset, t.Length)
		}
		total += t.Length
		longest = max(longest, t.Length)
	}
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch la, lb := tasks[a].Length, tasks[b].Length; {
		case la > lb:
			return -1
		case la < lb:
			return 1
		}
		return 0
	})

	var done atomic.Int64
	var report func(n int64)
	if h.progress != nil {
		var mu sync.Mutex
		var reported int64
		report = func(n int64) {
			d := done.Add(n)
			mu.Lock()
			if d > reported {
				reported = d
				h.progress(Update{Done: d, Total: total})
			}
			mu.Unlock()
		}
	}

	// A fixed pool of workers, each taking the next task in order, rather than a goroutine per
	// task: a model of 100,000 small files would otherwise start 100,000 goroutines, and each
	// would grow its stack again to the depth the caller's open hook (a content scan) needs.
	sums := make([][]byte, len(tasks))
	workers := min(h.workers, len(tasks))
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	// Each worker reads through one buffer of its own, no larger than the longest task: a
	// model of small files needs no block of 4 MiB per worker, allocated (and cleared) again
	// for every call.
	bufSize := int(min(int64(h.blockSize), max(longest, 1)))
	for range workers {
		g.Go(func() error {
			buf := make([]byte, bufSize)
			for {
				k := int(next.Add(1)) - 1
				if k >= len(order) || gctx.Err() != nil {
					return nil
				}
				i := order[k]
				sum, err := h.hashTask(gctx, i, tasks[i], buf, report)
				if err != nil {
					return err
				}
				sums[i] = sum
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}

// HashFile hashes one whole file.
func (h *Hasher) HashFile(ctx context.Context, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	sums, err := h.Hash(ctx, []Task{{Path: path, Length: fi.Size()}})
	if err != nil {
		return nil, err
	}
	return sums[0], nil
}

// ErrShortFile means a file ended before the range a task asked for: it shrank while it was
// being hashed, or the task was wrong about its size.
var ErrShortFile = errors.New("file is shorter than expected")

func (h *Hasher) hashTask(ctx context.Context, i int, t Task, buf []byte, report func(int64)) ([]byte, error) {
	f, err := h.open(i, t)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return h.hashRange(ctx, f, t, buf, report)
}

// hashRange hashes t's range of r, reading through buf.
func (h *Hasher) hashRange(ctx context.Context, r io.ReaderAt, t Task, buf []byte, report func(int64)) ([]byte, error) {
	hh := h.alg.New()
	off, end := t.Offset, t.Offset+t.Length
	for off < end {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := int64(len(buf))
		if end-off < n {
			n = end - off
		}
		got, err := r.ReadAt(buf[:n], off)
		if got > 0 {
			hh.Write(buf[:got])
			off += int64(got)
			if report != nil {
				report(int64(got))
			}
		}
		if err != nil && int64(got) < n {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("digest: %s: %w: wanted bytes [%d,%d), file ends at %d", t.Path, ErrShortFile, t.Offset, end, off)
			}
			return nil, fmt.Errorf("digest: %s: %w", t.Path, err)
		}
	}
	return hh.Sum(nil), nil
}

// Shards cuts a file of the given size into byte ranges of at most shardSize bytes, the way
// model_signing does: [0,s), [s,2s), ... with a shorter last shard. An empty file has no shards.
func Shards(path string, size, shardSize int64) []Task {
	if size <= 0 || shardSize <= 0 {
		return nil
	}
	tasks := make([]Task, 0, (size+shardSize-1)/shardSize)
	for start := int64(0); start < size; start += shardSize {
		n := min(shardSize, size-start)
		tasks = append(tasks, Task{Path: path, Offset: start, Length: n})
	}
	return tasks
}
