// Package scan statically checks weight and model files (safetensors and their sharded
// indexes, pickles, PyTorch zip, legacy and tar checkpoints, NumPy .npy/.npz, GGUF, ONNX,
// Keras .keras and .h5, TensorFlow SavedModels, TFLite) by reading their bytes. It never executes or unpickles anything, and a file that cannot be parsed is never
// reported as safe.
//
// The format is decided by content. A protocol 0 or 1 pickle has no magic bytes, so content
// that matches no format is walked by the pickle analyser: if an unpickler would finish a
// pickle, call something or reach a dangerous import, the file is a pickle and judged as one.
// So it is if an unpickler would import anything off the allowlist (importing runs the
// module's code) and a loader would unpickle the file: its name is one loaders unpickle
// (.pkl, .bin, .pt, a tar checkpoint's pickle member...) or its bytes up to the import are
// not text. Otherwise the file is named by what it holds, with a Safe verdict: FormatJSON,
// FormatText (a word list "cat\ndog" named classes.txt reads as one import of at.dog, but
// nothing unpickles a .txt file), FormatSentencePiece, or FormatUnknown when it is none of
// them; the load gate's policy decides which of these may pass. Files of other formats are also
// probed as pickles, because torch.load unpickles any file that is not a zip.
//
// Pickles are judged by a symbolic pickle machine (stack, marks and memo of abstract values),
// so imports are resolved the way an unpickler resolves them, through the memo and across
// stacked and nested pickles. Every import is checked against a denylist (Dangerous), then
// against the allowlist of PyTorch's weights_only unpickler plus NumPy's reconstructors (Safe);
// anything else is Suspicious. Opcode uses that gadget chains and parser differentials need
// (BUILD on an imported object, calling a computed callable, frames that straddle opcodes) are
// Dangerous.
//
// Model formats that can carry code are walked for it: ONNX operator domains and external-data
// paths (protowire over random access, tensor bytes skipped), Keras configs (Lambda layers,
// imports outside keras), legacy .h5 files through a minimal HDF5 reader of the root
// attributes, every op of a SavedModel's graphs and functions, TFLite operator codes. Code
// inside such a format is a Safe finding whose rule starts with "code.", which the load gate
// judges by its code rule; file access and imports are findings with a verdict.
//
// Zip members are read as PyTorch reads them: by the central directory, ignoring flag bits
// and CRCs, and scanned by content whatever their names. 7z archives are read with
// github.com/bodgit/sevenzip, their files scanned by content; encrypted ones are Suspicious.
package scan
