// Package hubtest is a Hugging Face Hub-compatible HTTP server for tests, in the spirit of
// net/http/httptest: it serves model repositories with the Hub's JSON, headers, redirects and
// error codes, and can inject faults, so a client that passes against it passes against the Hub.
// It is meant for your tests as much as ours; the official JavaScript client @huggingface/hub
// works against it unchanged.
//
// # Serving
//
// New returns a Server, an http.Handler for the Hub. LFS downloads redirect with a 302 to a
// second handler, Server.CDN, standing in for the Hub's CDN: serve it on its own listener and
// tell the Server where with SetCDNURL. NewServer does all of that on two httptest servers:
//
//	ts := hubtest.NewServer(t, hubtest.WithModel("acme/bert-tiny", map[string][]byte{
//		"config.json":       []byte(`{"model_type":"bert"}`),
//		"model.safetensors": weights,
//	}))
//	client, _ := hub.NewClient(hub.WithEndpoint(ts.URL), hub.WithAllowedRedirectHosts(ts.CDNHost()))
//
// Repositories come from memory (WithModel), a directory (WithModelDir, WithReposDir), and grow
// with Server.Commit, Server.SetTag and Server.OpenPR. Files matching the usual LFS patterns or
// larger than 10 MiB are LFS files (IsLFS). Commit ids derive from the content, so the same
// files always give the same commit. Repos can be private, gated or disabled, with tokens
// declared by WithToken and granted with GrantAccess.
//
// # Routes
//
//   - GET /api/models/{org}/{name}[/revision/{rev}] with ?blobs=true (siblings carry size, blobId
//     and lfs.sha256), ?expand=... and ?securityStatus=true
//   - GET /api/models/{org}/{name}/tree/{rev}[/{path}]?recursive=&expand= (entries carry oid and
//     lfs.oid), paginated with Link: <…>; rel="next" (WithTreePageSize)
//   - POST /api/models/{org}/{name}/paths-info/{rev}, form or JSON body
//   - GET /api/models/{org}/{name}/refs, /auth-check; GET /api/whoami-v2;
//     GET /api/organizations/{name}/overview (WithOrganization), /api/users/{name}/overview
//   - GET|HEAD /{org}/{name}/resolve/{rev}/{path}: plain git files with ETag (git blob id),
//     X-Repo-Commit, Range, If-None-Match and gzip for text; LFS files as a 302 to the CDN with
//     X-Linked-Etag (sha256) and X-Linked-Size. /raw/ serves LFS pointers.
//   - Revisions: branches, tags, refs/pr/N (escaped or not), 40-hex commits and HEAD.
//   - Errors carry X-Error-Code, X-Error-Message and {"error": …}: RepoNotFound (401 anonymous,
//     404 with a token), RevisionNotFound, EntryNotFound (with X-Repo-Commit), GatedRepo (401/403),
//     403 "Access to this resource is disabled.", 401 for unknown tokens, 307 for renamed repos.
//
// The CDN serves byte ranges with its own ETag (never the sha256, as on the real CDN), checks the
// Hub's signature on the URL, and refuses any request carrying an Authorization header, so a
// client that leaks its token to the CDN fails loudly. Server.Requests records every request.
//
// # Faults
//
// WithFault and Server.AddFault inject a Fault per file, per route and for a number of requests:
// an HTTP status (5xx, or 429 with Retry-After and RateLimit), a connection dropped after N
// bytes, corrupted bytes of the right length, an ignored Range header, a stall (of a file's
// bytes, or with RouteAPI of an API answer), a redirect to another host, a body longer than
// announced, or tree listings whose empty pages link to fresh cursors forever.
//
// # Command
//
// cmd/hubtest serves a directory of repositories as a process, for benchmarks and tests in other
// languages: go run ./hub/hubtest/cmd/hubtest -repos DIR -addr 127.0.0.1:PORT.
package hubtest
