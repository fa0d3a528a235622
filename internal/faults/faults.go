// Package faults keeps the faults a test server (hub/hubtest, registry/registrytest) has been
// told to inject, each for a number of requests, and hands them out one use at a time, safely
// for concurrent requests.
package faults

import "sync"

// Set holds faults of type F. Its zero value is empty and ready to use.
type Set[F any] struct {
	mu   sync.Mutex
	live []*entry[F]
}

type entry[F any] struct {
	fault F
	left  int // uses left; -1 is unlimited
}

// Add injects f from now on, for times requests (0: every request until Clear).
func (s *Set[F]) Add(f F, times int) {
	left := times
	if left <= 0 {
		left = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = append(s.live, &entry[F]{fault: f, left: left})
}

// Clear removes every fault.
func (s *Set[F]) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = nil
}

// Take returns a copy of the first fault, in the order added, that has uses left and that match
// accepts, and consumes one of its uses; nil when none does. match runs under the set's lock:
// it must only look at the fault.
func (s *Set[F]) Take(match func(*F) bool) *F {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.live {
		if e.left == 0 || !match(&e.fault) {
			continue
		}
		if e.left > 0 {
			e.left--
		}
		f := e.fault
		return &f
	}
	return nil
}
