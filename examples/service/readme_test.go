package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippetIsThisProgramsCode keeps README.md's "For Go services" snippet in step with
// this program: the README says it is the program's own integration, so every line of it must
// be a line of main.go, in the same order (indentation aside).
func TestReadmeSnippetIsThisProgramsCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## For Go services\n")
	if !ok {
		t.Fatal(`README.md has no "For Go services" section`)
	}
	_, snippet, ok := strings.Cut(section, "```go\n")
	snippet, _, ok2 := strings.Cut(snippet, "```\n")
	if !ok || !ok2 {
		t.Fatal("no go block in the section")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var program []string
	for _, l := range strings.Split(string(src), "\n") {
		program = append(program, strings.TrimSpace(l))
	}
	at := 0
	for _, line := range strings.Split(snippet, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		found := false
		for ; at < len(program); at++ {
			if program[at] == line {
				found, at = true, at+1
				break
			}
		}
		if !found {
			t.Fatalf("README.md's snippet line %q is not in main.go (in order): update one or the other", line)
		}
	}
}
