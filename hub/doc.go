// Package hub is a client for the Hugging Face Hub: model references, repository info and file
// trees at a pinned commit, verified downloads, and a local cache in huggingface_hub's own layout.
package hub
