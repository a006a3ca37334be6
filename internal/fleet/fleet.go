// Package fleet is what syncing every connected account of a Stripe
// platform needs besides the engine: the selection of accounts
// (Selection: "all", a list, exclusions), their discovery from
// GET /v1/accounts, the state key that keeps each account's cursors and
// checkpoints apart in one destination, the recognition of an account whose
// access was revoked, and the platform-wide request budget shared by every
// account's client (Budget: one process, or every process of a PostgreSQL
// control store).
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/stripeline/stripeline/internal/stripe"
)

// Platform is the account id of the platform itself in a Selection and in
// the accounts a fleet syncs: its rows carry an empty _stripeline_account.
const Platform = ""

// Selection says which accounts of a platform a pipeline syncs. The zero
// value selects nothing (the pipeline is not a fleet).
type Selection struct {
	// All selects the platform and every connected account that
	// GET /v1/accounts lists at each run.
	All bool
	// IDs are connected accounts (acct_…) selected by name; with All they
	// are redundant. "platform" in the text form selects the platform.
	IDs []string
	// Platform selects the platform account itself (implied by All).
	Platform bool
	// Except are accounts left out (the text form's -acct_…).
	Except []string
}

// IsZero reports whether the selection selects nothing.
func (s Selection) IsZero() bool { return !s.All && len(s.IDs) == 0 && !s.Platform }

// ParseSelection reads the text form: comma-separated items, each "all",
// "platform", an account id acct_…, or -acct_… to leave one out. A parse
// error names the item and the fix.
func ParseSelection(items ...string) (Selection, error) {
	var s Selection
	for _, raw := range items {
		for _, it := range strings.Split(raw, ",") {
			it = strings.TrimSpace(it)
			switch {
			case it == "":
			case it == "all":
				s.All = true
			case it == "platform":
				s.Platform = true
			case strings.HasPrefix(it, "-acct_") && len(it) > len("-acct_"):
				s.Except = append(s.Except, it[1:])
			case strings.HasPrefix(it, "acct_") && len(it) > len("acct_"):
				s.IDs = append(s.IDs, it)
			default:
				return Selection{}, fmt.Errorf("%q is not an account selection item: use all, platform, acct_… (an account) or -acct_… (leave one out)", it)
			}
		}
	}
	if len(s.Except) > 0 && !s.All {
		return Selection{}, errors.New("-acct_… leaves an account out of all: add all, or list the accounts to sync")
	}
	return s, nil
}

// String is the text form ParseSelection reads.
func (s Selection) String() string {
	var parts []string
	if s.All {
		parts = append(parts, "all")
	}
	if s.Platform && !s.All {
		parts = append(parts, "platform")
	}
	parts = append(parts, s.IDs...)
	for _, x := range s.Except {
		parts = append(parts, "-"+x)
	}
	return strings.Join(parts, ",")
}

// MarshalText writes the text form.
func (s Selection) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the text form.
func (s *Selection) UnmarshalText(b []byte) error {
	v, err := ParseSelection(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Account is one account of a fleet as discovery found it.
type Account struct {
	// ID is acct_…, or Platform ("") for the platform itself.
	ID string `json:"id"`
	// Name is the account's display name or email, for the faces.
	Name string `json:"name,omitempty"`
	// Created is the account's creation (unix seconds), 0 when unknown.
	Created int64 `json:"created,omitempty"`
}

// Lister is what discovery needs of the platform's client (one without a
// Stripe-Account header).
type Lister interface {
	ListPage(ctx context.Context, path string, q url.Values) (*stripe.Page, error)
}

// Discover lists the accounts the selection names, in a stable order (the
// platform first, then by id). With All it pages GET /v1/accounts (100 a
// page); listed IDs that Stripe does not list are still returned (a sync
// of one then says why it fails, e.g. access revoked), as the list may lag.
func Discover(ctx context.Context, c Lister, sel Selection) ([]Account, error) {
	var out []Account
	if sel.All || sel.Platform {
		out = append(out, Account{ID: Platform, Name: "platform"})
	}
	seen := map[string]bool{Platform: true}
	except := map[string]bool{}
	for _, x := range sel.Except {
		except[x] = true
	}
	var listed []Account
	if sel.All {
		q := url.Values{"limit": {"100"}}
		for {
			p, err := c.ListPage(ctx, "/v1/accounts", q)
			if err != nil {
				return nil, fmt.Errorf("list the connected accounts (GET /v1/accounts): %w", err)
			}
			var last string
			for _, raw := range p.Data {
				var a struct {
					ID       string `json:"id"`
					Email    string `json:"email"`
					Created  int64  `json:"created"`
					Settings struct {
						Dashboard struct {
							DisplayName string `json:"display_name"`
						} `json:"dashboard"`
					} `json:"settings"`
				}
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, fmt.Errorf("list the connected accounts: decode an account: %w", err)
				}
				last = a.ID
				name := a.Settings.Dashboard.DisplayName
				if name == "" {
					name = a.Email
				}
				listed = append(listed, Account{ID: a.ID, Name: name, Created: a.Created})
			}
			if !p.HasMore || last == "" {
				break
			}
			q.Set("starting_after", last)
		}
	}
	for _, id := range sel.IDs {
		listed = append(listed, Account{ID: id})
	}
	sort.SliceStable(listed, func(i, j int) bool { return listed[i].ID < listed[j].ID })
	for _, a := range listed {
		if seen[a.ID] || except[a.ID] {
			continue
		}
		seen[a.ID] = true
		out = append(out, a)
	}
	return out, nil
}

// StateKey is the name a fleet account's state and run history carry in
// the destination (the engine's Options.Pipeline): the pipeline's own name
// for the platform, so a pipeline that synced the platform alone keeps its
// cursors when it becomes a fleet, and pipeline@acct_… for a connected
// account. Pipeline names hold no @, so keys never collide.
func StateKey(pipeline, account string) string {
	if account == Platform {
		return pipeline
	}
	return pipeline + "@" + account
}

// Revoked reports whether err is Stripe's refusal of an account the key
// may no longer act on: 403 account_invalid, what Stripe answers once the
// account has disconnected the platform (account.application.deauthorized).
func Revoked(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.StatusCode == 403 && se.Code == "account_invalid"
}

// Label is how the faces name an account: "platform" or its id.
func Label(account string) string {
	if account == Platform {
		return "platform"
	}
	return account
}
