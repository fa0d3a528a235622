package modelverify

import "log/slog"

// LogValue gives the evidence as one structured log attribute, for a service's decision line:
// what was verified, by whom and when, under the names the evidence has in JSON. The per-file
// digests and formats are left out (a model may have thousands of shards); files counts them.
func (e Evidence) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("ref", e.Ref), slog.String("repo", e.Repo), slog.String("revision", e.Revision),
		slog.String("commit", e.Commit), slog.String("endpoint", e.Endpoint), slog.String("publisher", e.Publisher),
		slog.String("verification", string(e.Verification)), slog.String("decision", string(e.Decision)),
		slog.String("manifestDigest", e.ManifestDigest), slog.Int("files", len(e.Digests)),
		slog.Time("verifiedAt", e.VerifiedAt),
	}
	if e.Signer.Kind != "" {
		signer := []slog.Attr{slog.String("kind", e.Signer.Kind), slog.String("identity", e.Signer.Identity)}
		if e.Signer.Issuer != "" {
			signer = append(signer, slog.String("issuer", e.Signer.Issuer))
		}
		attrs = append(attrs, slog.Attr{Key: "signer", Value: slog.GroupValue(signer...)})
	}
	if !e.SignedAt.IsZero() {
		attrs = append(attrs, slog.Time("signedAt", e.SignedAt))
	}
	if len(e.Problems) > 0 {
		problems := make([]string, len(e.Problems))
		for i, p := range e.Problems {
			problems[i] = p.String()
		}
		attrs = append(attrs, slog.Any("problems", problems))
	}
	if e.Cached {
		attrs = append(attrs, slog.Bool("cached", true))
	}
	return slog.GroupValue(attrs...)
}
