// Package scan statically checks weight files (safetensors and their sharded indexes,
// pickles, PyTorch zip, legacy and tar checkpoints, NumPy .npy/.npz, GGUF) by reading their
// bytes. It never executes or unpickles anything, and a file that cannot be parsed is never
// reported as safe.
//
// The format is decided by content, never by file name. A protocol 0 or 1 pickle has no
// magic bytes, so content that matches no format is walked by the pickle analyser: if an
// unpickler would get as far as importing something (or would finish a pickle), the file is a
// pickle and judged as one; otherwise an unpickler fails before it can run anything and the
// file is FormatUnknown with a Safe verdict, and the load gate's policy decides whether
// unknown files may pass. Files of other formats are also probed as pickles, because
// torch.load unpickles any file that is not a zip.
//
// Pickles are judged by a symbolic pickle machine (stack, marks and memo of abstract values),
// so imports are resolved the way an unpickler resolves them, through the memo and across
// stacked and nested pickles. Every import is checked against a denylist (Dangerous), then
// against the allowlist of PyTorch's weights_only unpickler plus NumPy's reconstructors (Safe);
// anything else is Suspicious. Opcode uses that gadget chains and parser differentials need
// (BUILD on an imported object, calling a computed callable, frames that straddle opcodes) are
// Dangerous.
//
// Zip members are read as PyTorch reads them: by the central directory, ignoring flag bits
// and CRCs, and scanned by content whatever their names. 7z archives are recognised but cannot
// be inspected: they are Suspicious.
package scan
