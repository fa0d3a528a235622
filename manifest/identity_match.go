package manifest

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// CompileAnchored compiles expr, a Go regular expression for a signer's identity, issuer or
// any other certificate value, the way every verifier here matches it: against the whole value,
// as if written ^(?:expr)$. Anchoring by meaning rather than by spelling matters because
// "^alice@x\.com|bob@x\.com$" starts with ^ and ends with $ and yet, matched as written,
// accepts "mallorybob@x.com": the alternation splits the anchors. ^ and $ in expr are allowed
// and change nothing; a (?m) flag inside expr cannot reach the outer anchors.
//
// A pattern that matches the empty value is refused: a certificate field that is absent reads
// as empty, so such a pattern would accept a certificate that says nothing at all.
func CompileAnchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		// Reported against the pattern as written, not the wrapped one.
		return nil, fmt.Errorf("%q is not a valid regular expression: %v", expr, errors.Unwrap(err))
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		// Only a pattern that closes the wrapper's group, e.g. "a)|(b", gets here.
		return nil, fmt.Errorf("%q is not a valid regular expression: %v", expr, errors.Unwrap(err))
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("%q matches an empty value, which is what an absent field reads as; require at least one character (for example .+ instead of .*)", expr)
	}
	return re, nil
}

// OptionError is a verifier option that cannot be used: the option, named as a policy document
// spells it ("sourceRepositoryRefRegexp", "extendedKeyUsages[1]"), and why.
type OptionError struct {
	Field   string
	Message string
}

func (e *OptionError) Error() string { return e.Field + ": " + e.Message }

// optionErrors joins problems into one error that matches ErrIdentity, or nil.
func optionErrors(problems []*OptionError) error {
	if len(problems) == 0 {
		return nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return fmt.Errorf("%w: %w", ErrIdentity, errors.Join(errs...))
}

// valueConstraint is one compiled X / XRegexp pair: what a certificate value must be.
type valueConstraint struct {
	field string // the exact field's JSON name, which names the value in messages
	exact string
	re    *regexp.Regexp
	expr  string // the regexp as written
}

func (c valueConstraint) match(v string) bool {
	if c.re != nil {
		return c.re.MatchString(v)
	}
	return v == c.exact
}

// want says what the constraint asks for, in a message.
func (c valueConstraint) want() string {
	if c.re != nil {
		return "a whole match for " + strconv.Quote(c.expr)
	}
	return strconv.Quote(c.exact)
}

// matchAny reports whether any of values satisfies c; the refusal lists what was found.
func (c valueConstraint) matchAny(what string, values []string) error {
	for _, v := range values {
		if c.match(v) {
			return nil
		}
	}
	found := "none"
	if len(values) > 0 {
		q := make([]string, len(values))
		for i, v := range values {
			q[i] = strconv.Quote(v)
		}
		found = strings.Join(q, ", ")
	}
	return fmt.Errorf("%w: %s: want %s, found %s", ErrIdentity, what, c.want(), found)
}

// compileConstraints reads the X / XRegexp string pairs of a constraints struct (v is a
// pointer to one) by their JSON names. A pair may have one half set, or neither; every
// problem is reported, each naming its field.
func compileConstraints(v any) ([]valueConstraint, []*OptionError) {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	var out []valueConstraint
	var problems []*OptionError
	for i := range rt.NumField() {
		f := rt.Field(i)
		if strings.HasSuffix(f.Name, "Regexp") {
			continue
		}
		name := jsonName(f)
		rf, ok := rt.FieldByName(f.Name + "Regexp")
		if !ok {
			panic("manifest: constraint field " + f.Name + " has no Regexp pair")
		}
		c, problem := newValueConstraint(name, rv.Field(i).String(), jsonName(rf), rv.FieldByIndex(rf.Index).String())
		switch {
		case problem != nil:
			problems = append(problems, problem)
		case c != nil:
			out = append(out, *c)
		}
	}
	return out, problems
}

// newValueConstraint makes the constraint of one pair: nil when neither half is set.
func newValueConstraint(name, exact, regexpName, expr string) (*valueConstraint, *OptionError) {
	switch {
	case exact != "" && expr != "":
		return nil, &OptionError{Field: name, Message: fmt.Sprintf("%s and %s are exclusive; set one", name, regexpName)}
	case expr != "":
		re, err := CompileAnchored(expr)
		if err != nil {
			return nil, &OptionError{Field: regexpName, Message: err.Error()}
		}
		return &valueConstraint{field: name, re: re, expr: expr}, nil
	case exact != "":
		return &valueConstraint{field: name, exact: exact}, nil
	}
	return nil, nil
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// describeConstraints lists the constraints of a constraints struct that are set, for
// messages: `sourceRepositoryRef matching "refs/tags/v.+", buildTrigger "push"`.
func describeConstraints(v any) string {
	rv := reflect.ValueOf(v).Elem()
	var parts []string
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		value := rv.Field(i).String()
		if value == "" {
			continue
		}
		if name, ok := strings.CutSuffix(jsonName(f), "Regexp"); ok {
			parts = append(parts, name+" matching "+strconv.Quote(value))
		} else {
			parts = append(parts, jsonName(f)+" "+strconv.Quote(value))
		}
	}
	return strings.Join(parts, ", ")
}
