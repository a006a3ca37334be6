package cli

import (
	"os"
	"runtime/debug"

	"golang.org/x/term"
)

// ProcessEnv is the environment of the process itself: os.Args, the
// standard streams, the process's environment variables and working
// directory, the wall clock, terminals as the operating system reports
// them, and the runtime's memory limit. Only main (and a test binary acting
// as stripeline) calls it; everything else gets its Env from Run.
func ProcessEnv() Env {
	dir, err := os.Getwd()
	if err != nil {
		dir = "" // relative paths stay the process's
	}
	return Env{
		Args:           os.Args[1:],
		Stdin:          os.Stdin,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		Getenv:         os.Getenv,
		Dir:            dir,
		IsTerminal:     fileIsTerminal,
		SetMemoryLimit: debug.SetMemoryLimit,
	}
}

// fileIsTerminal reports whether stream is an *os.File open on a terminal.
func fileIsTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
