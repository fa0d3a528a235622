// Package hub is a client for the Hugging Face Hub: model references, repository info and file
// trees at a pinned commit, verified downloads, and a local cache in huggingface_hub's own layout.
//
// A reference ("org/name", "org/name@rev", "hf://org/name@rev") is resolved to a commit, the
// commit's tree gives every file's size and the Hub's own digests (the LFS sha256, or the git
// blob id of a plain git file), and Download streams each file into a staging file, hashing it
// as it arrives. A file enters the cache only after its digest and size match, and a snapshot
// becomes visible only after every file has passed, including any check the caller adds with
// WithStagedCheck. Python's transformers and huggingface_hub read the resulting cache as their
// own.
//
// The client follows the Hub's conventions (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE,
// HF_HUB_OFFLINE), retries 408, 429 and 5xx with backoff, honouring Retry-After and RateLimit,
// resumes interrupted transfers with Range, fetches large files in parallel ranges, and prints
// nothing: progress goes to WithProgress. Its token is sent to the endpoint's own origin only,
// never across a redirect, and redirects may lead only to hosts the caller approves.
//
// Errors match sentinels with errors.Is (ErrRepoNotFound, ErrGatedRepo, ErrDigestMismatch,
// ErrRedirectNotAllowed, ...) and carry details in typed errors found with errors.As (*HubError,
// *FileError, *DigestError, *SizeError, *RangeError, *RedirectError).
//
// Package hub/hubtest is a Hub-compatible server to test against.
package hub
