package scan

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX models are protobuf ModelProto messages (onnx/onnx.proto). Two things in them reach
// past the graph's arithmetic when a runtime loads the model:
//   - operators of a domain the runtime does not implement itself: onnxruntime resolves them
//     from a custom-op library the caller registers, i.e. native code (counted as code);
//   - tensors stored outside the file (data_location EXTERNAL): each names a file by a path
//     that onnx and onnxruntime join to the model's directory. Absolute paths, ".." and
//     links out of the directory read any file on the host (CVE-2022-25882,
//     CVE-2024-27318, CVE-2025-51480 for the write side).
// Only the structure is read: initializer bytes (raw_data and the typed arrays) are skipped.

// onnxStandardDomains are the operator domains onnx and onnxruntime implement themselves
// ("" is ai.onnx). com.microsoft holds onnxruntime's contrib operators, which ship with it.
var onnxStandardDomains = map[string]bool{
	"": true, "ai.onnx": true, "ai.onnx.ml": true, "ai.onnx.preview.training": true, "com.microsoft": true,
}

// maxONNXExternal bounds the distinct external-data places kept for the file check.
const maxONNXExternal = 100000

// onnxExternal is one tensor's external data: the file (relative to the model's directory)
// and the byte range it claims.
type onnxExternal struct {
	tensor   string
	location string
	offset   int64
	length   int64 // -1: to the end of the file
}

type onnxScan struct {
	src       *pbSource
	rep       *Report
	member    string
	functions map[string]bool // "domain\x00name" of the model's local functions
	custom    map[string]bool // custom domain -> seen
	customOps []string
	external  []onnxExternal
}

// looksLikeONNX: a ModelProto as every serializer writes it starts with ir_version (field 1,
// varint; 3 and up since ONNX 1.0), then another ModelProto field. A SavedModel also starts
// with field 1 but holds schema version 1.
func looksLikeONNX(head []byte) bool {
	if len(head) < 4 || head[0] != 0x08 {
		return false
	}
	v, n := protowire.ConsumeVarint(head[1:])
	if n < 0 || v < 3 || v > 64 {
		return false
	}
	num, typ, m := protowire.ConsumeTag(head[1+n:])
	if m < 0 {
		return false
	}
	switch num {
	case 2, 3, 4, 6, 7, 8, 14, 20, 25:
		return typ == protowire.BytesType
	case 5:
		return typ == protowire.VarintType
	}
	return false
}

// scanONNX checks the model's operator domains and external-data paths.
func scanONNX(r io.ReaderAt, size int64, rep *Report, member string) {
	o := &onnxScan{src: newPBSource(r, size), rep: rep, member: member,
		functions: map[string]bool{}, custom: map[string]bool{}}
	// Local functions are declared at the top level (field 25); a node calling one is not a
	// custom operator. They are collected first because they may follow the graph.
	err := o.src.walk(0, size, func(f pbField) error {
		if f.num != 25 {
			return nil
		}
		if err := message(f); err != nil {
			return err
		}
		var name, domain string
		err := o.src.walk(f.off, f.off+f.n, func(g pbField) error {
			var err error
			switch g.num {
			case 1:
				name, err = o.src.str(g)
			case 10:
				domain, err = o.src.str(g)
			}
			return err
		})
		o.functions[domain+"\x00"+name] = true
		return err
	})
	if err == nil {
		err = o.src.walk(0, size, func(f pbField) error {
			switch f.num {
			case 7: // graph
				return o.graph(f, 1)
			case 20: // training_info: initialization (1) and algorithm (2) graphs
				return o.subGraphs(f, 1, 1, 2)
			case 25: // functions: nodes (7)
				if err := message(f); err != nil {
					return err
				}
				return o.src.walk(f.off, f.off+f.n, func(g pbField) error {
					if g.num == 7 {
						return o.node(g, 2)
					}
					return nil
				})
			}
			return nil
		})
	}
	if err != nil {
		rep.add(pbFinding("onnx.malformed", "ONNX", member, err))
	}
	for _, op := range o.customOps {
		rep.add(Finding{Verdict: Safe, Member: member, Offset: -1, Rule: "code.onnx-custom-op",
			Message: fmt.Sprintf("operator %s is in a custom domain: onnxruntime runs it from a native custom-op library the loader registers", op), Err: ErrNote})
	}
	if member == "" {
		rep.onnxExternal = o.external
	} else if len(o.external) > 0 {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: "onnx.external-in-archive",
			Message: fmt.Sprintf("the model keeps tensors outside the file (%d, the first in %q); inside an archive those files cannot be checked", len(o.external), o.external[0].location), Err: ErrUnsupported})
	}
}

// within walks the message in f at the given nesting depth.
func (o *onnxScan) within(f pbField, depth int, fn func(pbField) error) error {
	if depth > pbMaxDepth {
		return errPBDepth
	}
	if err := message(f); err != nil {
		return err
	}
	return o.src.walk(f.off, f.off+f.n, fn)
}

// subGraphs walks the graphs in fields nums of the message in f.
func (o *onnxScan) subGraphs(f pbField, depth int, nums ...protowire.Number) error {
	return o.within(f, depth, func(g pbField) error {
		if slices.Contains(nums, g.num) {
			return o.graph(g, depth+1)
		}
		return nil
	})
}

// graph walks a GraphProto: nodes (1), initializers (5), sparse initializers (15).
func (o *onnxScan) graph(f pbField, depth int) error {
	return o.within(f, depth, func(g pbField) error {
		switch g.num {
		case 1:
			return o.node(g, depth+1)
		case 5:
			return o.tensor(g, depth+1)
		case 15: // SparseTensorProto: values (1) and indices (2) are tensors
			return o.sparse(g, depth+1)
		}
		return nil
	})
}

func (o *onnxScan) sparse(f pbField, depth int) error {
	return o.within(f, depth, func(g pbField) error {
		if g.num == 1 || g.num == 2 {
			return o.tensor(g, depth+1)
		}
		return nil
	})
}

// node walks a NodeProto: op_type (4), domain (7), attributes (5), which hold tensors and
// subgraphs (If, Loop, Scan bodies).
func (o *onnxScan) node(f pbField, depth int) error {
	var op, domain string
	err := o.within(f, depth, func(g pbField) error {
		var err error
		switch g.num {
		case 4:
			op, err = o.src.str(g)
		case 7:
			domain, err = o.src.str(g)
		case 5:
			err = o.attribute(g, depth+1)
		}
		return err
	})
	if err != nil {
		return err
	}
	if !onnxStandardDomains[domain] && !o.functions[domain+"\x00"+op] {
		key := domain + "\x00" + op
		if !o.custom[key] && len(o.customOps) < 100 {
			o.customOps = append(o.customOps, fmt.Sprintf("%q of domain %q", op, domain))
		}
		o.custom[key] = true
	}
	return nil
}

// attribute walks an AttributeProto: t (5), g (6), sparse_tensor (22), tensors (10),
// graphs (11), sparse_tensors (23).
func (o *onnxScan) attribute(f pbField, depth int) error {
	return o.within(f, depth, func(g pbField) error {
		switch g.num {
		case 5, 10:
			return o.tensor(g, depth+1)
		case 6, 11:
			return o.graph(g, depth+1)
		case 22, 23:
			return o.sparse(g, depth+1)
		}
		return nil
	})
}

// tensor walks a TensorProto for its name (8), external_data entries (13) and
// data_location (14). The data fields are skipped.
func (o *onnxScan) tensor(f pbField, depth int) error {
	var name string
	var entries [][2]string
	external := false
	err := o.within(f, depth, func(g pbField) error {
		var err error
		switch g.num {
		case 8:
			name, err = o.src.str(g)
		case 13:
			var kv [2]string
			if err := message(g); err != nil {
				return err
			}
			err = o.src.walk(g.off, g.off+g.n, func(h pbField) error {
				var err error
				if h.num == 1 || h.num == 2 {
					kv[h.num-1], err = o.src.str(h)
				}
				return err
			})
			entries = append(entries, kv)
		case 14:
			external = g.typ == protowire.VarintType && g.value == 1
		}
		return err
	})
	if err != nil {
		return err
	}
	if external || len(entries) > 0 {
		o.externalData(name, entries)
	}
	return nil
}

// externalData checks one tensor's external_data keys (onnx docs/ExternalData.md:
// location, offset, length, checksum; loaders add basepath themselves).
func (o *onnxScan) externalData(tensor string, entries [][2]string) {
	ext := onnxExternal{tensor: tensor, length: -1}
	seenLocation := false
	bad := func(v Verdict, rule, format string, args ...any) {
		o.rep.add(Finding{Verdict: v, Member: o.member, Offset: -1, Rule: rule,
			Message: fmt.Sprintf("tensor %q: ", tensor) + fmt.Sprintf(format, args...), Err: ErrMalformed})
	}
	for _, kv := range entries {
		switch kv[0] {
		case "location":
			ext.location, seenLocation = kv[1], true
		case "offset", "length":
			n, err := strconv.ParseInt(kv[1], 10, 64)
			if err != nil || n < 0 {
				bad(Suspicious, "onnx.external-range", "external_data %s %q is not a non-negative integer", kv[0], kv[1])
				return
			}
			if kv[0] == "offset" {
				ext.offset = n
			} else {
				ext.length = n
			}
		case "checksum":
		default:
			// basepath among them would redirect onnx's loader (it sets basepath itself);
			// other keys were the setattr route of CVE-2026-34445.
			bad(Suspicious, "onnx.external-key", "external_data key %q is not one of location, offset, length, checksum", kv[0])
		}
	}
	if !seenLocation {
		bad(Suspicious, "onnx.external-location", "the tensor is stored externally but names no location")
		return
	}
	if p := externalPathProblem(ext.location); p != "" {
		bad(Dangerous, "onnx.external-path", "external data location %q %s: the runtime would read a file outside the model", ext.location, p)
		return
	}
	if len(o.external) < maxONNXExternal {
		o.external = append(o.external, ext)
	}
}

// externalPathProblem says why an external-data location is not a plain path inside the
// model directory, or "" when it is one. Both separators count: onnxruntime on Windows takes
// either.
func externalPathProblem(loc string) string {
	switch {
	case loc == "":
		return "is empty"
	case strings.ContainsRune(loc, 0):
		return "holds a NUL byte"
	case strings.HasPrefix(loc, "/"), strings.HasPrefix(loc, `\`):
		return "is absolute"
	case len(loc) >= 2 && loc[1] == ':':
		return "names a drive"
	}
	for _, part := range strings.FieldsFunc(loc, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "climbs out with .."
		}
	}
	return ""
}

// checkONNXExternal checks the external-data files of the model in dir: each must be a
// regular file inside dir (links followed, and refused when they leave it) that holds the
// claimed range. The files themselves are scanned as files of the model by whoever walks
// the model's files; here they are only located.
func checkONNXExternal(ctx context.Context, dir string, rep *Report) error {
	if len(rep.onnxExternal) == 0 {
		return nil
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	byFile := map[string][]onnxExternal{}
	for _, e := range rep.onnxExternal {
		byFile[e.location] = append(byFile[e.location], e)
	}
	for _, loc := range slices.Sorted(maps.Keys(byFile)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		exts := byFile[loc]
		bad := func(v Verdict, rule string, class error, format string, args ...any) {
			rep.add(Finding{Verdict: v, Offset: -1, Rule: rule,
				Message: fmt.Sprintf("external data %q (tensor %q): ", loc, exts[0].tensor) + fmt.Sprintf(format, args...), Err: class})
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.ReplaceAll(loc, `\`, "/")))
		real, err := filepath.EvalSymlinks(p)
		if os.IsNotExist(err) {
			bad(Suspicious, "onnx.external-missing", ErrMalformed, "the file is not beside the model")
			continue
		} else if err != nil {
			return err
		}
		if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			bad(Dangerous, "onnx.external-link", ErrMalformed, "a link leads out of the model directory, to %s", real)
			continue
		}
		fi, err := os.Stat(real)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			bad(Suspicious, "onnx.external-missing", ErrMalformed, "not a regular file")
			continue
		}
		for _, e := range exts {
			end := e.offset + max(e.length, 0)
			if e.offset > fi.Size() || e.length >= 0 && (end < e.offset || end > fi.Size()) {
				rep.add(Finding{Verdict: Suspicious, Offset: -1, Rule: "onnx.external-range",
					Message: fmt.Sprintf("external data %q: tensor %q claims bytes %d..%d of a %d-byte file", loc, e.tensor, e.offset, end, fi.Size()), Err: ErrTruncated})
				break
			}
		}
	}
	return nil
}

// WithFileAlone tells ScanFile that the file is not beside the model's other files (a blob in
// a staging area named by digest), so the checks that read them are left to the caller: an
// ONNX model's external data is then checked by CheckONNXExternalData once the model is laid
// out. The scan of the file's own bytes is unchanged.
func WithFileAlone() Option { return func(c *config) { c.alone = true } }

// CheckONNXExternalData checks the external-data files of the ONNX model name in dir: each
// must be a regular file there (links are followed and must stay in dir) that holds the bytes
// the model claims. The report holds only those findings (the model's own were reported by
// its scan), with the model's format. The error is for I/O failures only.
func CheckONNXExternalData(ctx context.Context, dir, name string, opts ...Option) (*Report, error) {
	rep, err := ScanFile(ctx, filepath.Join(dir, name), append(opts, WithFileAlone())...)
	if err != nil {
		return nil, err
	}
	out := &Report{Format: rep.Format, Size: rep.Size, onnxExternal: rep.onnxExternal}
	if err := checkONNXExternal(ctx, filepath.Dir(filepath.Join(dir, name)), out); err != nil {
		return nil, err
	}
	return out, nil
}

// ONNXExternalData lists the external-data files a scanned ONNX model names (relative to
// its directory), so the caller can account for them as part of the model.
func (r *Report) ONNXExternalData() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range r.onnxExternal {
		if !seen[e.location] {
			seen[e.location] = true
			out = append(out, e.location)
		}
	}
	sort.Strings(out)
	return out
}
