package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/echelongraph/go-modelverify/modelverify"
)

func runAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "audit", "verifier audit (--log F | --policy P) [--last-blocked] [--since 24h|7d|RFC3339] [--until T] [--repo org/name] [--publisher NAME] [--decision allowed|refused|audit-allowed] [--unverified]")
	logPath := fs.String("log", "", "the audit log; its rotated copies (F.1, F.2.gz, ...) are read too")
	policyPath := fs.String("policy", "", "read the audit log the policy's audit.path names")
	lastBlocked := fs.Bool("last-blocked", false, "answer: when was an unverified model last blocked?")
	since := fs.String("since", "", "only decisions at or after this time: a duration back from now (24h, 7d) or an RFC 3339 time or date")
	until := fs.String("until", "", "only decisions before this time (same forms as --since)")
	repo := fs.String("repo", "", "only decisions about this repository (org/name)")
	publisher := fs.String("publisher", "", "only decisions about this policy publisher")
	decision := fs.String("decision", "", "only decisions of this kind: allowed, refused or audit-allowed")
	unverified := fs.Bool("unverified", false, "only decisions whose model's authenticity was not proved")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("audit: unexpected arguments %q", pos)
	}
	if (*logPath == "") == (*policyPath == "") {
		return usagef("audit: give exactly one of --log F or --policy P")
	}
	if *policyPath != "" {
		p, err := modelverify.LoadPolicy(*policyPath)
		if err != nil {
			return err
		}
		if p.Audit.Path == "" {
			return usagef("audit: policy %s records no audit log file (audit.path)", *policyPath)
		}
		*logPath = p.Audit.Path
	}
	now := time.Now()
	var q modelverify.AuditQuery
	if q.Since, err = parseAuditTime(*since, now); err != nil {
		return usagef("audit: --since: %v", err)
	}
	if q.Until, err = parseAuditTime(*until, now); err != nil {
		return usagef("audit: --until: %v", err)
	}
	q.Repo, q.Publisher, q.Unverified = *repo, *publisher, *unverified
	switch d := modelverify.Decision(*decision); d {
	case "":
	case modelverify.DecisionAllowed, modelverify.DecisionRefused, modelverify.DecisionAuditAllowed:
		q.Decisions = []modelverify.Decision{d}
	default:
		return usagef("audit: --decision %q: want allowed, refused or audit-allowed", *decision)
	}

	files, err := modelverify.AuditFiles(*logPath)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("audit: no audit log at %s", *logPath)
	}
	records := modelverify.ReadAuditFiles(files...)

	var readErr error
	if *lastBlocked {
		var rec *modelverify.Record
		if q.Since.IsZero() && q.Until.IsZero() && q.Repo == "" && q.Publisher == "" && !q.Unverified && q.Decisions == nil {
			rec, readErr = modelverify.LastBlocked(records)
		} else {
			q.Decisions = []modelverify.Decision{modelverify.DecisionRefused}
			rec, readErr = modelverify.LastAudit(records, q)
		}
		if e.json {
			if err := writeJSON(e, map[string]any{"files": files, "lastBlocked": rec}); err != nil {
				return err
			}
		} else if rec == nil {
			fmt.Fprintf(e.stdout, "no model was blocked (in %s)\n", strings.Join(files, ", "))
		} else {
			fmt.Fprintf(e.stdout, "last blocked: %s\n", rec.Time.UTC().Format(time.RFC3339))
			printRecord(e, *rec)
		}
	} else {
		var recs []modelverify.Record
		recs, readErr = modelverify.FindAudit(records, q)
		if e.json {
			if recs == nil {
				recs = []modelverify.Record{}
			}
			if err := writeJSON(e, map[string]any{"files": files, "records": recs}); err != nil {
				return err
			}
		} else {
			counts := map[modelverify.Decision]int{}
			for _, r := range recs {
				printRecord(e, r)
				counts[r.Decision]++
			}
			fmt.Fprintf(e.stdout, "%s: %d allowed, %d refused, %d audit-allowed\n", plural(len(recs), "decision"),
				counts[modelverify.DecisionAllowed], counts[modelverify.DecisionRefused], counts[modelverify.DecisionAuditAllowed])
		}
	}
	if readErr != nil {
		// The answer above is built from every well-formed line; the log is damaged, and that
		// must not pass for a complete answer.
		return fmt.Errorf("audit log is damaged, the answer may be incomplete: %w", firstError(readErr))
	}
	return nil
}

func printRecord(e *env, r modelverify.Record) {
	line := fmt.Sprintf("%s %-13s %s", r.Time.UTC().Format(time.RFC3339), r.Decision, r.Ref)
	if r.Commit != "" {
		line += " commit " + r.Commit
	}
	if r.Publisher != "" {
		line += " publisher " + r.Publisher
	}
	if r.Verification != "" {
		line += " verified " + string(r.Verification)
	}
	if len(r.Reasons) > 0 {
		line += " reasons " + strings.Join(r.Reasons, ",")
	}
	fmt.Fprintln(e.stdout, line)
	if r.Message != "" && r.Decision != modelverify.DecisionAllowed {
		fmt.Fprintf(e.stdout, "    %s\n", r.Message)
	}
}

// firstError picks the first of a joined error, with a count of the rest, to keep it one line.
func firstError(err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	errs := j.Unwrap()
	if len(errs) <= 1 {
		return err
	}
	return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}

// parseAuditTime reads --since and --until: a duration back from now ("24h", "90m", "7d"), an
// RFC 3339 time, or a date (midnight UTC). Empty means no bound.
func parseAuditTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 && n <= 100*366 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration back from now must not be negative")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d) nor an RFC 3339 time or date", s)
}
