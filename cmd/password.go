package cmd

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
)

// The backup password never comes as a flag value (other users see those
// in ps): it comes from a file, standard input, the environment or a
// prompt without echo, in that order of precedence. It is never printed,
// logged or put in an error message.

// passwordEnv is the environment variable that may hold the password.
const passwordEnv = "MBAUDIT_PASSWORD"

// maxPasswordBytes bounds what is read from a password file or stdin.
const maxPasswordBytes = 64 << 10

type passwordFlags struct {
	file  string
	stdin bool
}

func (o *passwordFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "password-file", Usage: "read the backup password of encrypted backups from `FILE` (its first line)", Destination: &o.file, TakesFile: true},
		&cli.BoolFlag{Name: "password-stdin", Usage: "read the backup password from standard input (its first line)", Destination: &o.stdin},
	}
}

// password returns the password given, or nil when none was. need reports
// whether a backup would use one: only then is the user asked on a
// terminal (an empty answer skips).
func (o *passwordFlags) password(env Env, need func() bool) (*backup.Password, error) {
	switch {
	case o.file != "" && o.stdin:
		return nil, usagef("give either --password-file or --password-stdin, not both")
	case o.file != "":
		f, err := os.Open(o.file)
		if err != nil {
			return nil, usagef("cannot read the password file: %v", err)
		}
		defer f.Close()
		return firstLine(f, "the password file "+o.file)
	case o.stdin:
		return firstLine(env.Stdin, "standard input")
	}
	if v := env.Getenv(passwordEnv); v != "" {
		return backup.NewPassword([]byte(v)), nil
	}
	if env.ReadPassword == nil || !env.IsTerminal(env.Stdin) || !env.IsTerminal(env.Stderr) || !need() {
		return nil, nil
	}
	fmt.Fprint(env.Stderr, "Backup password for the encrypted backups (Enter to skip): ")
	pw, err := env.ReadPassword()
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("cannot read the password from the terminal: %w", err)
	}
	if len(pw) == 0 {
		return nil, nil
	}
	return backup.NewPassword(pw), nil
}

// firstLine reads a password: the first line, without its line ending.
func firstLine(r io.Reader, from string) (*backup.Password, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPasswordBytes+1))
	if err != nil {
		return nil, usagef("cannot read the password from %s: %v", from, err)
	}
	if len(data) > maxPasswordBytes {
		return nil, usagef("%s is too long to hold a password", from)
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return nil, usagef("no password in %s (its first line is empty)", from)
	}
	return backup.NewPassword(data), nil
}
