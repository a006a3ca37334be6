package cli_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// readmeBlock returns the command lines of the README's first sh block
// that contains marker, without comments and blank lines.
func readmeBlock(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```sh\n")
	for _, blk := range blocks[1:] {
		body, _, _ := strings.Cut(blk, "```")
		if !strings.Contains(body, marker) {
			continue
		}
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if i := strings.Index(l, " #"); i >= 0 {
				l = l[:i]
			}
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return lines
	}
	t.Fatalf("README.md has no sh block with %q", marker)
	return nil
}

// shellLine splits "A=1 B=2 stripeline args… [&]" into its environment and
// the stripeline arguments. It knows no quoting: the README's emulator
// lines need none.
func shellLine(t *testing.T, line string) (env map[string]string, args []string, background bool) {
	t.Helper()
	if strings.ContainsAny(line, `'"$|;`) {
		t.Fatalf("README line %q needs a shell; keep the emulator example plain", line)
	}
	fields := strings.Fields(line)
	if n := len(fields); n > 0 && fields[n-1] == "&" {
		fields, background = fields[:n-1], true
	}
	env = map[string]string{}
	for len(fields) > 0 && strings.Contains(fields[0], "=") {
		k, v, _ := strings.Cut(fields[0], "=")
		env[k] = v
		fields = fields[1:]
	}
	if len(fields) == 0 || fields[0] != "stripeline" {
		t.Fatalf("README line %q does not run stripeline", line)
	}
	return env, fields[1:], background
}

// TestReadmeEmulatorExample runs the README's "run the emulator alone"
// block as written: the emulator in the background (on a free port instead
// of 12111), then every command line against it with its environment.
func TestReadmeEmulatorExample(t *testing.T) {
	t.Parallel()
	lines := readmeBlock(t, "stripeline emulator")
	if len(lines) < 2 {
		t.Fatalf("the emulator block has %d lines, want the emulator and a command", len(lines))
	}
	_, emuArgs, bg := shellLine(t, lines[0])
	if !bg || len(emuArgs) == 0 || emuArgs[0] != "emulator" {
		t.Fatalf("first line %q should start the emulator in the background", lines[0])
	}
	i := slices.Index(emuArgs, "--addr")
	if i < 0 || i+1 >= len(emuArgs) {
		t.Fatalf("first line %q should give --addr", lines[0])
	}
	readmeBase := "http://" + emuArgs[i+1]
	emuArgs = slices.Delete(slices.Clone(emuArgs), i, i+2)
	base := startEmulatorCLI(t, emuArgs[1:]...)

	for _, line := range lines[1:] {
		env, args, _ := shellLine(t, line)
		if got := env["STRIPE_API_BASE"]; got != readmeBase {
			t.Errorf("%q: STRIPE_API_BASE=%s, want the emulator's %s", line, got, readmeBase)
		}
		code, out, errOut := runCLI(t, base, env["STRIPE_API_KEY"], args...)
		if code != 0 {
			t.Errorf("%q: exit %d\n%s%s", line, code, out, errOut)
			continue
		}
		if args[0] == "check" && !strings.Contains(out, "streams readable, 0 forbidden, 0 errors") {
			t.Errorf("%q: every stream should be readable:\n%s", line, out)
		}
	}
}
