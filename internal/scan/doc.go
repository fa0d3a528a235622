// Package scan statically checks weight files (safetensors, pickle, PyTorch checkpoints, NumPy
// and GGUF) by reading their bytes. It never executes or unpickles anything, and a file that
// cannot be parsed is never reported as safe.
package scan
