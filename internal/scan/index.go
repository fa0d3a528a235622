package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// A sharded model's index (model.safetensors.index.json) maps every tensor to the shard file
// that holds it. Loaders join each shard name to the model directory and load it, so a shard
// name can point outside the model, and an index can disagree with the shards it lists.

// safetensorsIndex is a decoded index.
type safetensorsIndex struct {
	weightMap map[string]string // tensor -> shard
	order     []string          // tensors in file order
}

// parseIndex reads a JSON file and returns its weight_map, or ok=false when the file is JSON
// without one (config.json, tokenizer.json). Values are skipped token by token, so a large
// tokenizer.json costs no memory.
func parseIndex(r io.Reader) (idx *safetensorsIndex, ok bool, err error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, false, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false, err
		}
		if tok.(string) != "weight_map" {
			if err := skipJSONValue(dec); err != nil {
				return nil, false, err
			}
			continue
		}
		if idx != nil {
			return nil, true, errors.New(`duplicate key "weight_map"`)
		}
		idx = &safetensorsIndex{weightMap: map[string]string{}}
		if err := expectDelim(dec, '{'); err != nil {
			return nil, true, fmt.Errorf("weight_map: %w", err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, true, err
			}
			v, err := dec.Token()
			if err != nil {
				return nil, true, err
			}
			shard, isStr := v.(string)
			if !isStr {
				return nil, true, fmt.Errorf("weight_map: the shard of %q is not a string", k)
			}
			name := k.(string)
			if _, dup := idx.weightMap[name]; dup {
				return nil, true, fmt.Errorf("weight_map: tensor %q is listed twice", name)
			}
			idx.weightMap[name] = shard
			idx.order = append(idx.order, name)
		}
		if err := expectDelim(dec, '}'); err != nil {
			return nil, true, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, idx != nil, err
	}
	return idx, idx != nil, nil
}

func skipJSONValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// shardNameProblem says why a shard name is unsafe to join to the model directory, or "".
func shardNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case strings.ContainsRune(name, 0):
		return "contains a NUL byte"
	case strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || filepath.IsAbs(name) || (len(name) > 1 && name[1] == ':'):
		return "is an absolute path"
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "climbs out of the model directory"
		}
	}
	if c := path.Clean(name); c == "." || strings.HasPrefix(c, "../") {
		return "does not name a file in the model directory"
	}
	return ""
}

// scanJSON confirms a JSON object as a safetensors index (and checks it on its own) or
// returns FormatUnknown for any other JSON. js is what a look at the same bytes found, or nil.
func scanJSON(r io.ReaderAt, size int64, cfg *config, rep *Report, member string, js *jsonFacts) Format {
	if size > cfg.maxJSONIndex {
		return FormatUnknown
	}
	if !js.mayBeIndex() {
		return FormatUnknown
	}
	idx, ok, err := parseIndex(io.NewSectionReader(r, 0, size))
	if !ok {
		return FormatUnknown
	}
	if err != nil {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "index.json",
			Message: "safetensors index is not valid: " + err.Error(), Err: ErrMalformed})
		return FormatSafetensorsIndex
	}
	bad := map[string]bool{}
	for _, t := range idx.order {
		shard := idx.weightMap[t]
		if p := shardNameProblem(shard); p != "" && !bad[shard] {
			bad[shard] = true
			rep.add(Finding{Verdict: Dangerous, Member: member, Offset: -1, Rule: "index.path",
				Message: fmt.Sprintf("shard name %q (of tensor %q) %s", shard, t, p), Err: ErrMalformed})
		}
	}
	return FormatSafetensorsIndex
}

// CheckSafetensorsIndex scans the index file indexName in dir and every shard it names:
// each shard must exist inside dir and be a valid safetensors file, and each tensor must
// be in the shard the index assigns it to, and in no other. The error is for I/O failures
// other than a missing shard, which is a finding.
func CheckSafetensorsIndex(ctx context.Context, dir, indexName string, opts ...Option) (*Report, error) {
	rep, err := ScanFile(ctx, filepath.Join(dir, indexName), opts...)
	if err != nil {
		return nil, err
	}
	if rep.Format != FormatSafetensorsIndex {
		rep.add(Finding{Verdict: Suspicious, Offset: -1, Rule: "index.not-index",
			Message: fmt.Sprintf("%s is a %s file, not a safetensors index", indexName, rep.Format), Err: ErrMalformed})
	}
	return rep, nil
}

// checkIndexShards cross-checks an index with the shards in dir.
func checkIndexShards(ctx context.Context, dir string, r io.ReaderAt, size int64, rep *Report, cfg *config) error {
	idx, ok, err := parseIndex(io.NewSectionReader(r, 0, size))
	if !ok || err != nil {
		return nil // already reported by scanJSON
	}
	byShard := map[string][]string{}
	for _, t := range idx.order {
		byShard[idx.weightMap[t]] = append(byShard[idx.weightMap[t]], t)
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	owner := map[string]string{} // tensor -> shard it was found in
	for _, shard := range shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		if shardNameProblem(shard) != "" {
			continue // reported by scanJSON; never opened
		}
		p := filepath.Join(dir, filepath.FromSlash(shard))
		real, err := filepath.EvalSymlinks(p)
		if errors.Is(err, os.ErrNotExist) {
			rep.add(Finding{Verdict: Suspicious, Member: shard, Offset: -1, Rule: "index.missing-shard",
				Message: fmt.Sprintf("the index assigns %d tensors to this shard, which does not exist", len(byShard[shard])), Err: ErrMalformed})
			continue
		}
		if err != nil {
			return err
		}
		if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			rep.add(Finding{Verdict: Dangerous, Member: shard, Offset: -1, Rule: "index.path",
				Message: "shard resolves (through a symlink) outside the model directory", Err: ErrMalformed})
			continue
		}
		f, err := os.Open(real)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		sub, err := Scan(ctx, f, fi.Size(), WithName(shard))
		if err != nil {
			f.Close()
			return err
		}
		for _, fd := range sub.Findings {
			if fd.Member == "" {
				fd.Member = shard
			} else {
				fd.Member = shard + "!" + fd.Member
			}
			rep.add(fd)
		}
		for _, g := range sub.Globals {
			rep.addGlobal(g)
		}
		rep.Members = append(rep.Members, Member{Name: shard, Format: sub.Format, Size: fi.Size()})
		if sub.Format != FormatSafetensors {
			rep.add(Finding{Verdict: Suspicious, Member: shard, Offset: -1, Rule: "index.shard-format",
				Message: fmt.Sprintf("shard is a %s file, not safetensors", sub.Format), Err: ErrMalformed})
			f.Close()
			continue
		}
		tensors, _ := readSafetensorsHeader(f, fi.Size())
		f.Close()
		listed := map[string]bool{}
		for _, t := range byShard[shard] {
			listed[t] = true
		}
		for _, t := range tensors {
			if prev, dup := owner[t.name]; dup {
				rep.add(Finding{Verdict: Suspicious, Member: shard, Offset: 8 + t.keyAt, Rule: "index.tensor-duplicate",
					Message: fmt.Sprintf("tensor %q is also in shard %q; which copy loads depends on the loader", t.name, prev), Err: ErrMalformed})
				continue
			}
			owner[t.name] = shard
			if !listed[t.name] {
				rep.add(Finding{Verdict: Suspicious, Member: shard, Offset: 8 + t.keyAt, Rule: "index.tensor-unlisted",
					Message: fmt.Sprintf("shard holds tensor %q, which the index assigns to %q", t.name, orNone(idx.weightMap[t.name])), Err: ErrMalformed})
			}
		}
	}
	for _, t := range idx.order {
		shard := idx.weightMap[t]
		if shardNameProblem(shard) != "" {
			continue
		}
		if _, found := owner[t]; !found && !rep.hasMissingShard(shard) {
			rep.add(Finding{Verdict: Suspicious, Member: shard, Offset: -1, Rule: "index.tensor-missing",
				Message: fmt.Sprintf("the index assigns tensor %q to this shard, which does not hold it", t), Err: ErrMalformed})
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no shard"
	}
	return s
}

func (r *Report) hasMissingShard(shard string) bool {
	for _, f := range r.Findings {
		if f.Member == shard && (f.Rule == "index.missing-shard" || f.Rule == "index.shard-format" || f.Rule == "index.path") {
			return true
		}
	}
	return false
}
