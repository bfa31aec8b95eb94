package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mbaudit/mbaudit/backup"
)

// The exit codes of the command-line contract.
const (
	ExitOK          = 0   // ran, and nothing needs a person
	ExitProblems    = 1   // ran, and problems were found
	ExitFailure     = 2   // could not do its job
	ExitInterrupted = 130 // interrupted; nothing left half-done
)

// errProblems is returned by a command that ran and found problems.
var errProblems = errors.New("problems found")

// usageError is bad usage: a wrong flag, value or argument.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode maps what a command returned to the process's exit status. It is
// the one place where errors become exit codes.
func exitCode(err error) int {
	var ue usageError
	var re *backup.RootError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled), errors.Is(err, errInterrupted):
		return ExitInterrupted
	case errors.As(err, &ue), errors.As(err, &re), errors.Is(err, backup.ErrNoDefaultRoot):
		return ExitFailure
	case errors.Is(err, errProblems):
		return ExitProblems
	}
	return ExitFailure
}

// errInterrupted marks a run stopped by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// reportError writes the error for a person on stderr, except for
// errProblems, which the command's output already explains.
func reportError(w io.Writer, err error) {
	if err == nil || errors.Is(err, errProblems) {
		return
	}
	var ue usageError
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, errInterrupted):
		msg = "interrupted"
	case errors.As(err, &ue):
		msg += " (see mbaudit --help)"
	}
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(w, "mbaudit: error: %s\n", line)
	}
}

// joinRootErrors keeps every root error, so each missing root is named.
func joinRootErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
