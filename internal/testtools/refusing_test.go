package testtools

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestRefusingAddrRefusesAndIsNotHandedOutAgain(t *testing.T) {
	addr := RefusingAddr(t)
	_, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	// The port stays taken: a server cannot listen on it.
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("a server could listen on %s", addr)
	}
}
