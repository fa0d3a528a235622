package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/echelongraph/go-modelverify/internal/httpretry"
)

// fileLock is an flock(2) lock on a file under .locks, the same files huggingface_hub's
// filelock uses, so Python and Go processes exclude each other too.
type fileLock struct{ f *os.File }

// lockFile takes an exclusive lock on path, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("hub: lock folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o664)
	if err != nil {
		return nil, fmt.Errorf("hub: opening lock: %w", err)
	}
	wait := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("hub: locking %s: %w", path, err)
		}
		if err := httpretry.Sleep(ctx, wait); err != nil {
			f.Close()
			return nil, fmt.Errorf("hub: waiting for lock %s: %w", path, err)
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

func (l *fileLock) unlock() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// tryLockFile takes the lock on path if it is free, and returns nil (and no error) if another
// process holds it.
func tryLockFile(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o664)
	if err != nil {
		return nil, fmt.Errorf("hub: opening lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, nil
		}
		return nil, fmt.Errorf("hub: locking %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}
