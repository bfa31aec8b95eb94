// Package cmd is mbaudit's command line: the root app, its flags, one file
// per command, and the one place where errors become exit codes (exit.go).
//
// Output rules, for every command:
//   - stdout carries the result only; warnings and errors go to stderr as
//     "mbaudit: warning: ..." and "mbaudit: error: ...".
//   - Colour, progress and "3 days ago" decorations appear only when that
//     stream is a terminal; --no-color or NO_COLOR turn colour off and
//     --quiet turns progress and decorations off. The table is printed
//     either way.
//   - Flags may come before or after the command and its paths.
//   - Personal identifiers appear only with --show-identifiers.
package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"golang.org/x/term"
)

// Version is the program's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Env is everything mbaudit takes from its surroundings, so that tests can
// stand in for the terminal, the clock, the environment and the platform.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	GOOS           string
	Home           string
	Now            func() time.Time
	// IsTerminal reports whether a stream is a terminal.
	IsTerminal func(any) bool
	// ReadPassword reads a line from the terminal without echo.
	ReadPassword func() ([]byte, error)
}

// OSEnv is the real environment.
func OSEnv() Env {
	home, _ := os.UserHomeDir()
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, GOOS: runtime.GOOS, Home: home, Now: time.Now,
		IsTerminal: func(s any) bool {
			f, ok := s.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
		ReadPassword: func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) },
	}
}

// Main runs mbaudit with the arguments (args[0] is the program name) and
// returns the exit status.
func Main(ctx context.Context, args []string, env Env) int {
	app := newApp(env)
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err != nil && ctx.Err() != nil {
		err = errInterrupted
	}
	reportError(env.Stderr, err)
	return exitCode(err)
}

func newApp(env Env) *cli.App {
	app := &cli.App{
		Name:    "mbaudit",
		Usage:   "audit and clean up iOS device backups (Finder, iTunes, idevicebackup2)",
		Version: Version,
		Description: `mbaudit checks the backup folders of iPhones, iPads and iPods offline:
which backups there are, whether each is whole, and what can go.

Each PATH is one backup folder or a folder that holds backups. Without a
PATH mbaudit reads $MBAUDIT_ROOT (colon-separated), else the macOS default
~/Library/Application Support/MobileSync/Backup. Linux has no default.`,
		Writer:                env.Stdout,
		ErrWriter:             env.Stderr,
		Reader:                env.Stdin,
		HideHelpCommand:       true,
		Suggest:               true,
		ExitErrHandler:        func(*cli.Context, error) {},
		OnUsageError:          onUsageError,
		CustomAppHelpTemplate: appHelpTemplate,
		Commands: []*cli.Command{
			newListCommand(env),
			newVerifyCommand(env),
			newUsageCommand(env),
			newReportCommand(env),
			newPruneCommand(env),
			newArchiveCommand(env),
			newUnarchiveCommand(env),
			newScheduleCommand(env),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
	}
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{err}
}

const appHelpTemplate = `NAME:
   {{.Name}} - {{.Usage}}

USAGE:
   mbaudit COMMAND [flags] [PATH ...]

DESCRIPTION:
   {{.Description}}

COMMANDS:{{range .VisibleCommands}}
   {{join .Names ", "}}{{"\t"}}{{.Usage}}{{end}}

FLAGS:
   --help, -h     show help (also after a command: mbaudit list --help)
   --version, -v  print the version

EXIT STATUS:
   0    ran, and nothing needs a person
   1    ran, and problems were found
   2    could not do its job (bad usage, a root missing or unreadable)
   130  interrupted
`

// common holds the flags every command that reads backups takes.
type common struct {
	format          string
	noColor         bool
	quiet           bool
	showIdentifiers bool
	device          string
	busyWindow      string
	jobs            int
}

func commonFlags(o *common, formats string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Value: "table", Usage: "output format: " + formats, Destination: &o.format},
		&cli.StringFlag{Name: "device", Usage: "only the backups of this device (UDID or device name)", Destination: &o.device},
		&cli.StringFlag{Name: "busy-window", Value: "10min", Usage: "an unfinished backup changed within `DURATION` counts as busy (being written now)", Destination: &o.busyWindow},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "parallel file-system workers (default: chosen for this machine)", Destination: &o.jobs},
		&cli.BoolFlag{Name: "show-identifiers", Usage: "include serial number, IMEI, MEID, ICCID and phone number in the output", Destination: &o.showIdentifiers},
		&cli.BoolFlag{Name: "no-color", Usage: "no colour (also: NO_COLOR set)", Destination: &o.noColor},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress and no decorations", Destination: &o.quiet},
	}
}

// checkFormat refuses a format the command does not have. "text" is an
// alias of "table" everywhere (the contract names it for report; a user
// who learnt it there should not be refused by list).
func checkFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a || (got == "text" && a == "table") {
			return nil
		}
	}
	return usagef("unknown --format %q (choose from %s)", got, strings.Join(allowed, ", "))
}

// roots returns the PATHs given, else the default roots.
func roots(paths []string, env Env) ([]string, error) {
	if len(paths) > 0 {
		return paths, nil
	}
	rs, err := backup.DefaultRoots(env.Getenv, env.GOOS, env.Home)
	if err != nil {
		return nil, fmt.Errorf("%w: pass a folder that holds backups, e.g. `mbaudit list ~/iPhoneBackups` "+
			"(the folder you gave idevicebackup2), or set MBAUDIT_ROOT", err)
	}
	return rs, nil
}
