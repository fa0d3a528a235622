// Command hubtest serves a directory of model repositories as a Hugging Face Hub, for
// benchmarks, demos and tests written in other languages:
//
//	go run ./hub/hubtest/cmd/hubtest -repos DIR -addr 127.0.0.1:PORT
//
// Each DIR/<org>/<name>/ directory is one model repository whose files are the branch main at
// one commit, whose id is derived from the content. Files matching the usual LFS patterns, or
// larger than 10 MiB, are LFS files, and their downloads redirect to a CDN listener on a second
// loopback port. The first line of stdout is the Hub's URL; the second is the CDN's. It serves
// until it is killed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/echelongraph/go-modelverify/hub/hubtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hubtest:", err)
		os.Exit(1)
	}
}

type tokenFlags []string

func (t *tokenFlags) String() string     { return strings.Join(*t, ",") }
func (t *tokenFlags) Set(v string) error { *t = append(*t, v); return nil }

func run() error {
	repos := flag.String("repos", "", "directory of <org>/<name>/ model repositories (required)")
	addr := flag.String("addr", "127.0.0.1:0", "address the Hub listens on")
	cdnAddr := flag.String("cdn-addr", "127.0.0.1:0", "address the CDN listens on")
	pageSize := flag.Int("tree-page-size", 1000, "entries per page of a tree listing")
	var tokens tokenFlags
	flag.Var(&tokens, "token", "TOKEN=USER: a valid access token (repeatable)")
	flag.Parse()
	if *repos == "" || flag.NArg() != 0 {
		flag.Usage()
		return errors.New("-repos is required")
	}
	opts := []hubtest.Option{hubtest.WithReposDir(*repos), hubtest.WithTreePageSize(*pageSize)}
	for _, t := range tokens {
		tok, user, ok := strings.Cut(t, "=")
		if !ok {
			return fmt.Errorf("-token %q: want TOKEN=USER", t)
		}
		opts = append(opts, hubtest.WithToken(tok, user))
	}
	srv, err := hubtest.Open(opts...)
	if err != nil {
		return err
	}
	hubLn, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	cdnLn, err := net.Listen("tcp", *cdnAddr)
	if err != nil {
		return err
	}
	srv.SetCDNURL("http://" + cdnLn.Addr().String())
	fmt.Printf("http://%s\n", hubLn.Addr())
	fmt.Printf("http://%s\n", cdnLn.Addr())

	errc := make(chan error, 2)
	go func() { errc <- http.Serve(cdnLn, srv.CDN()) }()
	go func() { errc <- http.Serve(hubLn, srv) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
		srv.Close()
		return nil
	}
}
