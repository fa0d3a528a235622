package faults

import (
	"sync"
	"testing"
)

type fault struct {
	name string
	kind int
}

func TestTakeConsumesUsesInTheOrderAdded(t *testing.T) {
	var s Set[fault]
	if s.Take(func(*fault) bool { return true }) != nil {
		t.Fatal("an empty set handed out a fault")
	}
	s.Add(fault{"twice", 1}, 2)
	s.Add(fault{"always", 1}, 0)
	s.Add(fault{"other kind", 2}, 1)
	kind1 := func(f *fault) bool { return f.kind == 1 }
	var got []string
	for range 4 {
		got = append(got, s.Take(kind1).name)
	}
	want := []string{"twice", "twice", "always", "always"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("takes = %q, want %q", got, want)
		}
	}
	if f := s.Take(func(f *fault) bool { return f.kind == 2 }); f == nil || f.name != "other kind" {
		t.Fatalf("kind 2: %v", f)
	}
	if f := s.Take(func(f *fault) bool { return f.kind == 2 }); f != nil {
		t.Fatalf("a fault for one request was handed out twice: %v", f)
	}
	// The caller gets a copy: changing it does not change what the set holds.
	s.Take(kind1).name = "changed"
	if f := s.Take(kind1); f.name != "always" {
		t.Fatalf("the set's fault changed through a copy: %q", f.name)
	}
	s.Clear()
	if f := s.Take(kind1); f != nil {
		t.Fatalf("Clear left %v", f)
	}
}

func TestConcurrentTakesNeverExceedTheUses(t *testing.T) {
	var s Set[fault]
	s.Add(fault{"ten", 1}, 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Take(func(*fault) bool { return true }) != nil {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if taken != 10 {
		t.Fatalf("%d takes of a fault with 10 uses", taken)
	}
}
