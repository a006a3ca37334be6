package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagUsagesHaveNoBackquotes: pflag takes `backquoted` text in a flag's
// usage as the name of its value, so "see `stripeline streams`" rendered
// as "--streams stripeline streams". No flag of any command may do that.
func TestFlagUsagesHaveNoBackquotes(t *testing.T) {
	t.Parallel()
	root := (&App{}).rootCommand()
	var walk func(*cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				n++
				if strings.Contains(f.Usage, "`") {
					name, _ := pflag.UnquoteUsage(f)
					t.Errorf("%s --%s: usage %q has backquotes; its help shows the value name %q", c.CommandPath(), f.Name, f.Usage, name)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 20 {
		t.Fatalf("visited %d flags; the command tree was not walked", n)
	}
}

// TestSyncHelpReadsNormally checks the rendered help of sync --streams.
func TestSyncHelpReadsNormally(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), Env{Args: []string{"sync", "--help"}, Stdout: &out, Stderr: &errOut, Dir: t.TempDir()}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	re := regexp.MustCompile(`--streams strings +streams to sync, comma separated \(default: all; see "stripeline streams"\)`)
	if !re.MatchString(out.String()) {
		t.Errorf("sync --help does not show --streams as\n  --streams strings   streams to sync, comma separated (default: all; see \"stripeline streams\")\ngot:\n%s", out.String())
	}
}
