package digest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func writeRandom(t testing.TB, dir, name string, size int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestHashMatchesOneShotDigestsForFilesAndShards(t *testing.T) {
	dir := t.TempDir()
	var tasks []Task
	var want [][]byte
	for i, size := range []int{0, 1, 4095, 4096, 4097, 3<<20 + 17, 9 << 20} {
		p, data := writeRandom(t, dir, "f"+string(rune('a'+i)), size, uint64(i))
		tasks = append(tasks, Task{Path: p, Length: int64(size)})
		s := sha256.Sum256(data)
		want = append(want, s[:])
		for _, sh := range Shards(p, int64(size), 1<<20+3) {
			tasks = append(tasks, sh)
			s := sha256.Sum256(data[sh.Offset : sh.Offset+sh.Length])
			want = append(want, s[:])
		}
	}
	for _, workers := range []int{1, 2, 7} {
		h, err := New(SHA256, WithWorkers(workers), WithBlockSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Hash(context.Background(), tasks)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tasks {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("workers=%d task %d (%+v): got %x want %x", workers, i, tasks[i], got[i], want[i])
			}
		}
	}
}

func TestAlgorithmsMatchPublishedVectors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "abc")
	os.WriteFile(p, []byte("abc"), 0o644)
	for alg, want := range map[Algorithm]string{
		SHA256:  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		BLAKE2b: "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
		BLAKE3:  "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
	} {
		h, err := New(alg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.HashFile(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != want || len(got) != alg.Size() {
			t.Errorf("%s: got %x", alg, got)
		}
	}
	if _, err := New("md5"); err == nil {
		t.Fatal("md5 accepted")
	}
}

func TestHashReportsAFileThatShrank(t *testing.T) {
	dir := t.TempDir()
	p, _ := writeRandom(t, dir, "f", 1000, 1)
	h, _ := New(SHA256)
	_, err := h.Hash(context.Background(), []Task{{Path: p, Length: 2000}})
	if !errors.Is(err, ErrShortFile) {
		t.Fatalf("got %v, want ErrShortFile", err)
	}
	if _, err := h.Hash(context.Background(), []Task{{Path: filepath.Join(dir, "missing"), Length: 1}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestHashStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	p, _ := writeRandom(t, dir, "f", 8<<20, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	h, _ := New(SHA256, WithBlockSize(4096), WithWorkers(1), WithProgress(func(Update) {
		if calls.Add(1) == 3 {
			cancel()
		}
	}))
	tasks := []Task{{Path: p, Length: 8 << 20}, {Path: p, Length: 8 << 20}}
	if _, err := h.Hash(ctx, tasks); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := calls.Load(); n > 10 {
		t.Fatalf("hashing went on for %d blocks after cancellation", n)
	}
}

func TestProgressIsMonotonicAndReachesTotal(t *testing.T) {
	dir := t.TempDir()
	var tasks []Task
	for i := range 6 {
		p, _ := writeRandom(t, dir, string(rune('a'+i)), 300_000+i, uint64(i))
		tasks = append(tasks, Task{Path: p, Length: int64(300_000 + i)})
	}
	var mu sync.Mutex
	var last Update
	h, _ := New(SHA256, WithBlockSize(4096), WithProgress(func(u Update) {
		mu.Lock()
		defer mu.Unlock()
		if u.Done < last.Done {
			t.Errorf("progress went back from %d to %d", last.Done, u.Done)
		}
		last = u
	}))
	if _, err := h.Hash(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	if last.Done != last.Total || last.Total != 6*300_000+15 {
		t.Fatalf("last update %+v", last)
	}
}

// barrierFile blocks its first read until every task of the test has started reading, so a
// pool that does not run tasks at once never finishes.
type barrierFile struct {
	*os.File
	barrier *sync.WaitGroup
	once    sync.Once
}

func (f *barrierFile) ReadAt(p []byte, off int64) (int, error) {
	f.once.Do(func() { f.barrier.Done(); f.barrier.Wait() })
	return f.File.ReadAt(p, off)
}

func TestWorkersHashTasksAtTheSameTime(t *testing.T) {
	dir := t.TempDir()
	var tasks []Task
	for i := range 2 {
		p, _ := writeRandom(t, dir, string(rune('a'+i)), 1<<20, uint64(i))
		tasks = append(tasks, Task{Path: p, Length: 1 << 20})
	}
	var barrier sync.WaitGroup
	barrier.Add(len(tasks))
	h, _ := New(SHA256, WithWorkers(2), WithOpen(func(p string) (ReaderAtCloser, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		return &barrierFile{File: f, barrier: &barrier}, nil
	}))
	done := make(chan error, 1)
	go func() { _, err := h.Hash(context.Background(), tasks); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("two workers never had two tasks in flight at once")
	}
}

// WithOpenTask's open gets each task with its index in the tasks given to Hash.
func TestWithOpenTaskGetsEachTaskWithItsIndex(t *testing.T) {
	dir := t.TempDir()
	var tasks []Task
	for i := range 5 {
		p, _ := writeRandom(t, dir, string(rune('a'+i)), 1000*(i+1), uint64(i))
		tasks = append(tasks, Task{Path: p, Length: int64(1000 * (i + 1))})
	}
	var mu sync.Mutex
	seen := map[int]string{}
	h, _ := New(SHA256, WithOpenTask(func(i int, task Task) (ReaderAtCloser, error) {
		mu.Lock()
		seen[i] = task.Path
		mu.Unlock()
		return os.Open(task.Path)
	}))
	if _, err := h.Hash(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	for i, task := range tasks {
		if seen[i] != task.Path {
			t.Errorf("task %d opened as %q, want %q", i, seen[i], task.Path)
		}
	}
}
