package hub

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Organization is what the Hub says of an organisation, from /api/organizations/{name}/overview.
type Organization struct {
	Name     string `json:"name"`
	Fullname string `json:"fullname"`
	// IsVerified is the Hub's "verified organisation" badge. It is the only such flag the API
	// has; it is undocumented, and absent for users, which count as unverified.
	IsVerified bool   `json:"isVerified"`
	Plan       string `json:"plan"`
	NumModels  int    `json:"numModels"`
}

// OrganizationOverview fetches an organisation's overview.
func (c *Client) OrganizationOverview(ctx context.Context, name string) (*Organization, error) {
	if !repoSegment.MatchString(name) || strings.Contains(name, "..") {
		return nil, fmt.Errorf("hub: %q is not a valid organisation name", name)
	}
	if c.offline {
		return nil, fmt.Errorf("hub: organisation %s: %w", name, ErrOffline)
	}
	u := c.endpoint.String() + "/api/organizations/" + url.PathEscape(name) + "/overview"
	var org Organization
	if _, err := c.getJSON(ctx, u, 1<<20, &org); err != nil {
		return nil, err
	}
	return &org, nil
}

// OrganizationVerified reports whether the Hub marks the organisation as verified. A namespace
// that is a user, not an organisation, is not verified.
func (c *Client) OrganizationVerified(ctx context.Context, name string) (bool, error) {
	org, err := c.OrganizationOverview(ctx, name)
	if err != nil {
		var he *HubError
		if errors.As(err, &he) && he.StatusCode == 404 {
			return false, nil
		}
		return false, err
	}
	return org.IsVerified, nil
}
