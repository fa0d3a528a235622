// Package scan statically checks weight and model files (safetensors and their sharded
// indexes, pickles, PyTorch zip, legacy and tar checkpoints, NumPy .npy/.npz, GGUF, ONNX,
// Keras .keras and .h5, TensorFlow SavedModels, TFLite, and the zip, tar, 7z and compressed
// containers they ship in) by reading their bytes. It never executes or unpickles anything, and a file that cannot be parsed is never
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
// # Containers: read the way each loader reads them
//
// A static scanner is only as good as its agreement with the loaders: where two loaders could
// read different content from the same bytes, the scanner reads every reading, and where the
// readings disagree it refuses the file as ambiguous (Dangerous, ErrAmbiguous), because what
// would load depends on who loads it.
//
// Zip (torch.save archives, TorchScript, .npz, any other zip). PyTorch's reader is miniz: it
// takes the last end-of-central-directory record, trusts the directory offset the record
// gives, reads exactly the number of entries it announces, finds the zip64 end record where
// the locator points, and ignores flag bits and CRCs. Python's zipfile (numpy.load of .npz)
// takes the end record in the last 22 bytes or the last signature in the last 64 KiB, expects
// the directory (and the zip64 end record) just before the end record, shifts every member
// offset by the difference, reads entries until the directory's size is used up, refuses
// members whose local header names another file or whose bytes overlap the next member, and
// refuses encrypted or CRC-failing members. Go's archive/zip computes Python's shift but drops
// a positive one when a directory entry also sits at the stated offset, uses zip64 only for
// overflowing fields, and reads entries until one fails. The scanner computes each reader's
// view (zipReadings): a second directory (a shift of either sign), a different end record,
// entry counts that part, a zip64 record that readers locate differently, overlapping members,
// a duplicated name, or a local header whose name differs from the directory's are each a
// zip.ambiguous, zip.overlap, zip.duplicate or zip.name-mismatch finding; every member of
// every view is scanned by content, whatever its name. Flag bits and CRCs are handled as
// miniz handles them (the member is read), with a finding noting that Python would refuse it.
// Members compressed with bzip2 or LZMA, which Python's zipfile reads and miniz does not,
// are decompressed and scanned too.
// An archive with a constants.pkl record or code/ is TorchScript (FormatTorchScript): torch.load
// hands it to torch.jit.load, which runs its code.
//
// Tar (torch <= 0.1 checkpoints, any other tar). torch.load's legacy path opens every non-zip
// file with tarfile first and unpickles its storages, tensors and pickle members. tarfile knows
// a header by its checksum, not the "ustar" magic, so V7, GNU and POSIX headers are all
// recognised (isTarHeader); it reads a member of a type it does not know as a regular file, so
// every member except links, devices, directories and FIFOs is scanned. The scan walks the
// archive with Go's archive/tar and checks every header it reads (GNU long-name and pax headers
// too) against tarfile's reading: tarfile cuts
// a numeric field at its first NUL where Go trims NULs at both ends, applies global pax and
// Solaris 'X' headers that Go does not, and so can find its next header where Go sees data.
// Such a header is tar.ambiguous (Dangerous, ErrAmbiguous), and the members tarfile's walk
// finds are scanned too. Where Go's
// archive/tar stops with an error and tarfile stops silently (a bad header after the first,
// a zero block followed by more data), the scan reports tar.header and is not Safe. Members of
// a tar on random-access storage are read in place; members of a tar stream are streamed.
//
// Compressed streams (gzip, bzip2, xz, zstd) are unwrapped the way Python's modules read them,
// concatenated members and streams one after another, and their content is scanned as the
// member "[gzip]" (and so on), streamed where the format allows and otherwise buffered (to a
// temporary file beyond 64 MiB). Decompressed bytes are capped for the whole file
// (WithMaxDecompressed), deflated zip members included; a file past the cap is a compression
// bomb (compress.bomb, ErrLimit). A deflated zip member is inflated only to its declared size,
// which is all Python's zipfile reads (miniz refuses a member that inflates to more). An xz
// block asking for a dictionary over 256 MiB (xz's presets use at most 64 MiB) is not
// decompressed (compress.limit), since the decoder would allocate all of it up front.
//
// 7z archives are read with github.com/bodgit/sevenzip, their files scanned by content, with
// the decoders' dictionaries and models bounded; encrypted ones are Suspicious.
//
// Native executables and libraries (ELF, thin and universal Mach-O, PE) are recognised by
// their headers as FormatNativeCode, so a renamed shared library is not waved through as
// unknown. CodeFormats lists the formats that are code; the load gate refuses them unless its
// policy allows code.
//
// Model formats that can carry code are walked for it: ONNX operator domains and external-data
// paths (protowire over random access, tensor bytes skipped), Keras configs (Lambda layers,
// imports outside keras), legacy .h5 files through a minimal HDF5 reader of the root
// attributes, every op of a SavedModel's graphs and functions, TFLite operator codes. Code
// inside such a format is a Safe finding whose rule starts with "code.", which the load gate
// judges by its code rule; file access and imports are findings with a verdict.
package scan
