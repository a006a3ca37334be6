package pipeline

import (
	"fmt"

	"github.com/stripeline/stripeline/internal/fleet"
)

// Accounts makes a pipeline a fleet: the accounts of a platform it syncs
// (all of them, a list, all but some), each with its own cursors,
// checkpoints and River job, into the same tables told apart by
// _stripeline_account. The zero value is a pipeline of one account
// (Connection.Account).
type Accounts struct {
	// Select is which accounts: "all" (the platform and every connected
	// account GET /v1/accounts lists, discovered again at each run),
	// "platform", acct_… ids, and -acct_… to leave one out of all.
	Select fleet.Selection `json:"select"`
	// PlatformRPS caps the requests of every account together, per second,
	// across every worker of the control store (0: no cap besides each
	// account's own pacer, max_rps). On a PostgreSQL store the cap is
	// shared through the store; on a SQLite store it holds per process.
	PlatformRPS float64 `json:"platform_rps,omitempty"`
}

// IsZero reports whether the pipeline syncs one account.
func (a Accounts) IsZero() bool { return a.Select.IsZero() && a.PlatformRPS == 0 }

// Fleet reports whether the pipeline syncs several accounts.
func (p *Pipeline) Fleet() bool { return !p.Connection.Accounts.Select.IsZero() }

func (a Accounts) validate(c *Connection) error {
	if a.Select.IsZero() {
		if a.PlatformRPS != 0 {
			return fieldErr("platform_rps", fmt.Sprint(a.PlatformRPS), "caps the requests of several accounts: set accounts too (all, or a list of acct_… ids)")
		}
		return nil
	}
	if c.Account != "" {
		return fieldErr("accounts", a.Select.String(), "and account %s are both set: give account for one connected account, or accounts for several", c.Account)
	}
	if _, err := fleet.ParseSelection(a.Select.String()); err != nil {
		return &FieldError{Field: "accounts", Value: a.Select.String(), Err: err}
	}
	if a.PlatformRPS < 0 {
		return fieldErr("platform_rps", fmt.Sprint(a.PlatformRPS), "must be positive (0 for no platform-wide cap)")
	}
	return nil
}
