package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeline/stripeline/internal/ops"
)

// writeFlags are the flags of create and update.
type writeFlags struct {
	json    string
	idemKey string
}

func (f *writeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.json, "json", "", `parameters as a JSON object, flattened to bracket form (e.g. '{"metadata":{"plan":"pro"}}'); null unsets`)
	cmd.Flags().StringVar(&f.idemKey, "idempotency-key", "", "Idempotency-Key to send (default: a random one, so client retries are safe)")
}

// params merges --json and key=value arguments (the arguments win on the
// same key) and reports bad input as usage errors.
func (f *writeFlags) params(args []string) (ops.Params, error) {
	var p ops.Params
	if f.json != "" {
		jp, err := ops.FlattenJSON([]byte(f.json))
		if err != nil {
			return nil, usagef("--json: %v", err)
		}
		p = jp
	}
	kv, err := ops.ParseAssignments(args)
	if err != nil {
		return nil, usage(err)
	}
	for _, x := range kv {
		p = p.Without(x.Key)
	}
	return append(p, kv...), nil
}

// writeError turns a validation failure into a usage error (the user typed
// the parameters), leaving Stripe's and the network's errors as they are.
func writeError(err error) error {
	var ve *ops.ValidationError
	if errors.As(err, &ve) {
		return usage(err)
	}
	return err
}

func newCreateCmd(a *App) *cobra.Command {
	var f writeFlags
	cmd := &cobra.Command{
		Use:   "create STREAM [key=value …]",
		Short: "Create one object (parameters checked against Stripe's spec before sending)",
		Long: `create sends POST /v1/<stream> with form parameters in Stripe's bracket notation
(metadata[plan]=pro, address[city]=Paris, items[0][price]=price_…) or given as JSON with
--json. Parameters are checked against the operation's request schema first: unknown
names (with a suggestion), types, enums, required ones and metadata limits.`,
		Example: `  stripeline create customers email=ann@example.com name=Ann metadata[plan]=pro address[city]=Paris
  stripeline create products --json '{"name":"Gold","metadata":{"tier":"3"}}'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.params(args[1:])
			if err != nil {
				return err
			}
			if err := ops.ValidateCreate(args[0], p); err != nil {
				return usage(err)
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			obj, err := ops.New(c, a.Logger()).Create(cmd.Context(), args[0], p, f.idemKey)
			if err != nil {
				return writeError(err)
			}
			return a.printObject(obj.Raw)
		},
	}
	f.add(cmd)
	return cmd
}

func newUpdateCmd(a *App) *cobra.Command {
	var f writeFlags
	cmd := &cobra.Command{
		Use:   "update STREAM ID [key=value …]",
		Short: "Update one object; key= (empty) unsets, e.g. metadata[plan]=",
		Long: `update sends POST /v1/<stream>/<id> with the given parameters (bracket notation or
--json). An empty value unsets: metadata[plan]= removes that metadata key. Parameters
are checked against the operation's request schema before sending.`,
		Example: `  stripeline update customers cus_123 metadata[plan]=
  stripeline update customers cus_123 --json '{"metadata":{"plan":"pro"}}'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.params(args[2:])
			if err != nil {
				return err
			}
			if len(p) == 0 {
				return usagef("nothing to update: give key=value parameters or --json")
			}
			if err := ops.ValidateUpdate(args[0], p); err != nil {
				return usage(err)
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			obj, err := ops.New(c, a.Logger()).Update(cmd.Context(), args[0], args[1], p, f.idemKey)
			if err != nil {
				return writeError(err)
			}
			return a.printObject(obj.Raw)
		},
	}
	f.add(cmd)
	return cmd
}

func newDeleteCmd(a *App) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete STREAM ID",
		Short: "Delete one object (asks for confirmation on a terminal unless --yes)",
		Example: `  stripeline delete customers cus_123
  stripeline delete customers cus_123 --yes   # scripts: stdin is not a terminal`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream, id := args[0], args[1]
			s, err := ops.LookupStream(stream)
			if err != nil {
				return usage(err)
			}
			if !s.Deletable {
				return usagef("%s cannot be deleted through the API", s.Name)
			}
			if !yes {
				if !a.isTerminal(a.Stdin) {
					return usagef("refusing to delete %s %s without confirmation: stdin is not a terminal, so pass --yes to delete", s.Name, id)
				}
				ok, err := confirm(a.Stdin, a.Stderr, fmt.Sprintf("Delete %s %s? This cannot be undone. [y/N] ", s.Name, id))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(a.Stderr, "not deleted")
					return nil
				}
			}
			c, err := a.Client()
			if err != nil {
				return err
			}
			obj, err := ops.New(c, a.Logger()).Delete(cmd.Context(), s.Name, id)
			if err != nil {
				return err
			}
			return a.printObject(obj.Raw)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}

// confirm asks a yes/no question on w and reads the answer from r.
func confirm(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
