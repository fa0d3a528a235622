// Package hubtest is a Hugging Face Hub-compatible HTTP server for tests, in the spirit of
// net/http/httptest: it serves model repositories with the Hub's JSON, headers, redirects and
// error codes, and can inject faults, so a client that passes against it passes against the Hub.
package hubtest
