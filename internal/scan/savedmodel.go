package scan

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// A TensorFlow SavedModel's saved_model.pb is a SavedModel message
// (tensorflow/core/protobuf/saved_model.proto): schema version 1, then MetaGraphDefs, each
// with a GraphDef whose nodes and function library are what TensorFlow runs when the model
// is loaded and called. TensorFlow's own guidance is that models are programs; what a graph
// can do beyond arithmetic is in its ops: reading, listing and writing files, calling Python
// registered in the process, saving and restoring checkpoints at paths it names. Every
// node of every graph and function is checked against those ops; nothing else is decoded.

// tfDangerousOps read, list or write files, or run Python, whatever their inputs.
// modelscan flags ReadFile and WriteFile (settings.py unsafe_tf_operators); TensorFlow's own
// saved_model_cli scan denies ReadFile, WriteFile and PrintV2; the rest are the file and
// Python ops of the same families (TensorAbuse, USENIX Security 2025, lists the ones used
// in practice).
var tfDangerousOps = map[string]string{
	"ReadFile":                      "reads a file",
	"WriteFile":                     "writes a file",
	"MatchingFiles":                 "lists files matching a pattern",
	"PyFunc":                        "calls a Python function registered in the loading process",
	"PyFuncStateless":               "calls a Python function registered in the loading process",
	"EagerPyFunc":                   "calls a Python function registered in the loading process",
	"ImmutableConst":                "memory-maps a file",
	"WholeFileReader":               "reads whole files",
	"WholeFileReaderV2":             "reads whole files",
	"DatasetToTFRecord":             "writes a file",
	"ExperimentalDatasetToTFRecord": "writes a file",
	"SaveDataset":                   "writes files",
	"SaveDatasetV2":                 "writes files",
	"DebugIdentityV2":               "sends tensors to a debugger's file or gRPC address",
	"DebugIdentityV3":               "sends tensors to a debugger's file or gRPC address",
	"DebugNanCount":                 "sends tensors to a debugger's file or gRPC address",
	"DebugNumericSummary":           "sends tensors to a debugger's file or gRPC address",
}

// tfSuspiciousOps read files named by their inputs. Real models use some of them (vocabulary
// tables from assets, input pipelines), so they are reported, not called dangerous.
var tfSuspiciousOps = map[string]string{
	"PrintV2":                       "prints to a stream its attribute names, which may be a file",
	"InitializeTableFromTextFile":   "reads a text file into a lookup table",
	"InitializeTableFromTextFileV2": "reads a text file into a lookup table",
	"TFRecordDataset":               "reads files",
	"TFRecordDatasetV2":             "reads files",
	"TextLineDataset":               "reads files",
	"FixedLengthRecordDataset":      "reads files",
	"FixedLengthRecordDatasetV2":    "reads files",
	"LoadDataset":                   "reads files",
	"LoadAndRemapMatrix":            "reads a checkpoint file",
	"DecodeProtoV2":                 "may read a descriptor file its attribute names",
	"TextLineReader":                "reads files",
	"TextLineReaderV2":              "reads files",
	"TFRecordReader":                "reads files",
	"TFRecordReaderV2":              "reads files",
	"FixedLengthRecordReader":       "reads files",
	"FixedLengthRecordReaderV2":     "reads files",
}

// tfCheckpointOps save or restore variables at a path given by their first input. Every
// SavedModel has them, fed by the loader's own path; a constant path is the model's choice.
var tfCheckpointOps = map[string]bool{
	"Save": true, "SaveV2": true, "SaveSlices": true, "Restore": true, "RestoreV2": true,
	"RestoreSlice": true, "MergeV2Checkpoints": true,
}

// looksLikeSavedModel: field 1 (saved_model_schema_version) = 1, then field 2 (meta_graphs).
func looksLikeSavedModel(head []byte) bool {
	return len(head) >= 4 && head[0] == 0x08 && head[1] == 0x01 && head[2] == 0x12
}

type tfScan struct {
	src    *pbSource
	rep    *Report
	member string
	seen   map[string]bool
	count  int
}

// tfNode is what the scan keeps of a NodeDef.
type tfNode struct {
	name, op string
	inputs   []string
	str      string // a Const's first string value
	isConst  bool
}

// scanSavedModel walks every graph and function of a SavedModel.
func scanSavedModel(r io.ReaderAt, size int64, rep *Report, member string) {
	t := &tfScan{src: newPBSource(r, size), rep: rep, member: member, seen: map[string]bool{}}
	err := t.src.walk(0, size, func(f pbField) error {
		if f.num != 2 {
			return nil
		}
		if err := message(f); err != nil {
			return err
		}
		return t.src.walk(f.off, f.off+f.n, func(g pbField) error {
			switch g.num {
			case 2: // MetaGraphDef.graph_def
				return t.graph(g, "graph")
			case 6: // asset_file_def: filename (2), which the loader joins to assets/
				if err := message(g); err != nil {
					return err
				}
				return t.src.walk(g.off, g.off+g.n, func(h pbField) error {
					if h.num != 2 {
						return nil
					}
					name, err := t.src.str(h)
					if p := externalPathProblem(name); err == nil && p != "" {
						t.add(Dangerous, "savedmodel.asset-path", ErrMalformed, "asset file %q %s: the loader would read a file outside the model's assets", name, p)
					}
					return err
				})
			}
			return nil
		})
	})
	if err != nil {
		rep.add(pbFinding("savedmodel.malformed", "SavedModel", member, err))
	}
}

// graph walks a GraphDef: its nodes (1) and its function library (2).
func (t *tfScan) graph(f pbField, where string) error {
	if err := message(f); err != nil {
		return err
	}
	var nodes []tfNode
	err := t.src.walk(f.off, f.off+f.n, func(g pbField) error {
		switch g.num {
		case 1:
			n, err := t.node(g)
			nodes = append(nodes, n)
			return err
		case 2:
			return t.library(g)
		}
		return nil
	})
	t.judge(nodes, where)
	return err
}

// library walks a FunctionDefLibrary's functions (1): signature name, node_def (3).
func (t *tfScan) library(f pbField) error {
	if err := message(f); err != nil {
		return err
	}
	return t.src.walk(f.off, f.off+f.n, func(g pbField) error {
		if g.num != 1 {
			return nil
		}
		if err := message(g); err != nil {
			return err
		}
		name := "?"
		var nodes []tfNode
		err := t.src.walk(g.off, g.off+g.n, func(h pbField) error {
			switch h.num {
			case 1: // OpDef signature: name (1)
				if err := message(h); err != nil {
					return err
				}
				return t.src.walk(h.off, h.off+h.n, func(i pbField) error {
					var err error
					if i.num == 1 {
						name, err = t.src.str(i)
					}
					return err
				})
			case 3:
				n, err := t.node(h)
				nodes = append(nodes, n)
				return err
			}
			return nil
		})
		t.judge(nodes, "function "+name)
		return err
	})
}

// node reads a NodeDef's name (1), op (2), inputs (3) and, for a Const, its string value
// (attr "value", a TensorProto whose string_val is field 8).
func (t *tfScan) node(f pbField) (tfNode, error) {
	var n tfNode
	if err := message(f); err != nil {
		return n, err
	}
	var attrs []pbField
	err := t.src.walk(f.off, f.off+f.n, func(g pbField) error {
		var err error
		switch g.num {
		case 1:
			n.name, err = t.src.str(g)
		case 2:
			n.op, err = t.src.str(g)
		case 3:
			var in string
			if in, err = t.src.str(g); err == nil && len(n.inputs) < 16 {
				n.inputs = append(n.inputs, in)
			}
		case 5:
			attrs = append(attrs, g)
		}
		return err
	})
	if err != nil || n.op != "Const" {
		return n, err
	}
	n.isConst = true
	for _, a := range attrs {
		if err := t.constString(a, &n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// constString reads attr {key: "value", value: AttrValue{tensor (8): {string_val (8)}}}.
func (t *tfScan) constString(a pbField, n *tfNode) error {
	if err := message(a); err != nil {
		return err
	}
	var key string
	var value pbField
	err := t.src.walk(a.off, a.off+a.n, func(g pbField) error {
		var err error
		switch g.num {
		case 1:
			key, err = t.src.str(g)
		case 2:
			value, err = g, message(g)
		}
		return err
	})
	if err != nil || key != "value" || value.n == 0 {
		return err
	}
	return t.src.walk(value.off, value.off+value.n, func(g pbField) error {
		if g.num != 8 {
			return nil
		}
		if err := message(g); err != nil {
			return err
		}
		return t.src.walk(g.off, g.off+g.n, func(h pbField) error {
			if h.num == 8 && n.str == "" && h.typ == protowire.BytesType && h.n <= pbMaxString {
				s, err := t.src.str(h)
				n.str = s
				return err
			}
			return nil
		})
	})
}

// judge reports the dangerous ops among one graph's or function's nodes.
func (t *tfScan) judge(nodes []tfNode, where string) {
	consts := map[string]string{}
	for _, n := range nodes {
		if n.isConst {
			consts[n.name] = n.str
		}
	}
	for _, n := range nodes {
		if why, ok := tfDangerousOps[n.op]; ok {
			t.add(Dangerous, "savedmodel.op", ErrDangerousOpcode, "%s: node %q runs op %s, which %s", where, n.name, n.op, why)
		} else if why, ok := tfSuspiciousOps[n.op]; ok {
			t.add(Suspicious, "savedmodel.op", ErrDangerousOpcode, "%s: node %q runs op %s, which %s", where, n.name, n.op, why)
		} else if tfCheckpointOps[n.op] && len(n.inputs) > 0 {
			// Inputs name "node", "node:0" or, in functions, "node:output:0".
			src, _, _ := strings.Cut(strings.TrimPrefix(n.inputs[0], "^"), ":")
			if p, ok := consts[src]; ok {
				if problem := externalPathProblem(p); problem != "" && p != "" {
					t.add(Dangerous, "savedmodel.checkpoint-path", ErrDangerousOpcode, "%s: node %q (%s) uses the constant path %q, which %s", where, n.name, n.op, p, problem)
				}
			}
		}
	}
}

func (t *tfScan) add(v Verdict, rule string, class error, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if t.seen[msg] || t.count >= 200 {
		return
	}
	t.seen[msg] = true
	t.count++
	t.rep.add(Finding{Verdict: v, Member: t.member, Offset: -1, Rule: rule, Message: msg, Err: class})
}

// TensorFlow's loader also reads saved_model.pbtxt, the same SavedModel in protobuf text
// format (a modelscan bypass: its scanner routes by the .pb extension). Such a file is text
// to everything else, so it is recognised by its first fields and its ops are read from
// its `op: "Name"` lines (every NodeDef, in graphs and functions alike, has one).

func looksLikeSavedModelText(r io.ReaderAt, size int64) bool {
	head := make([]byte, min(size, 4096))
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	return bytes.Contains(head, []byte("saved_model_schema_version")) ||
		bytes.Contains(head, []byte("meta_graphs {")) && bytes.Contains(head, []byte("graph_def"))
}

var tfTextOp = regexp.MustCompile(`^\s*op:\s*"([A-Za-z0-9_>.]+)"`)

func scanSavedModelText(r io.Reader, rep *Report, member string) {
	t := &tfScan{rep: rep, member: member, seen: map[string]bool{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var nodes []tfNode
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if m := tfTextOp.FindSubmatch(b); m != nil {
			nodes = append(nodes, tfNode{name: fmt.Sprintf("line %d", line), op: string(m[1])})
		}
		for err == bufio.ErrBufferFull { // a long line: only its start can hold an op
			_, err = br.ReadSlice('\n')
		}
		if err != nil {
			break
		}
	}
	t.judge(nodes, "saved_model.pbtxt")
}
