package config

import (
	"errors"

	"gopkg.in/yaml.v3"
)

// AccountList is a pipeline's accounts: written as one string
// (accounts: all, or "all,-acct_1") or as a list (accounts: [acct_1,
// acct_2]). Its items are all, platform, acct_… ids and -acct_… exclusions.
type AccountList []string

// UnmarshalYAML reads a scalar or a sequence of scalars.
func (l *AccountList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = AccountList{n.Value}
		return nil
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		*l = items
		return nil
	}
	return errors.New("accounts: use all, a list of acct_… ids, or all with -acct_… items to leave some out")
}
