//go:build unix

package testtools

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusingAddr returns a loopback host:port that refuses every connection for as long as the
// test runs. A socket bound to it, and never listening, holds the port: no other server, in this
// process or another, can take it, as one could the port of a listener closed for the purpose
// (which then answers, at random, what was meant to be unreachable).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("getsockname: %T", sa)
	}
	return fmt.Sprintf("127.0.0.1:%d", in4.Port)
}
