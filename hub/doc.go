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
// nothing: progress goes to WithProgress.
//
// Every fault ends. Response headers must come within a header timeout (30 s) and every read of
// a body (an API answer, a signature, a file) must deliver a byte within an idle timeout (60 s;
// WithTimeouts). A failing request or transfer is retried within a retry budget (one minute from
// its first failure; WithRetry): a server that stops sending fails after the idle timeout plus
// the budget, and a Retry-After beyond what is left of the budget fails at once with a
// *HubError that says so. A tree listing must end: a repeated cursor or an empty page that links
// to another is an ErrInvalidResponse. Failures that may pass later (the network, the Hub's 5xx
// and 429, stalls, a full or failing disk) match ErrTemporary; answers about the model (not
// found, gated, a digest mismatch) do not.
//
// The cache survives a killed process. A transfer writes to its blob's .incomplete file under
// the blob's lock, as huggingface_hub does, and the next one resumes from it, re-hashing the
// kept bytes with the rest. A new snapshot is built aside and renamed into place whole. What a
// crashed Download left is recognised by name and removed under the lock its owner would hold.
// A Download holds a bounded number of open files whatever its number of files. Its token is sent to the endpoint's own origin only,
// never across a redirect, and redirects may lead only to hosts the caller approves.
//
// Errors match sentinels with errors.Is (ErrRepoNotFound, ErrGatedRepo, ErrDigestMismatch,
// ErrRedirectNotAllowed, ...) and carry details in typed errors found with errors.As (*HubError,
// *FileError, *DigestError, *SizeError, *RangeError, *RedirectError).
//
// Package hub/hubtest is a Hub-compatible server to test against.
package hub
