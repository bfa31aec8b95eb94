package cmd

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

type verifyOptions struct {
	common
	passwordFlags
	deep bool
}

func newVerifyCommand(env Env) *cli.Command {
	o := &verifyOptions{}
	return &cli.Command{
		Name:      "verify",
		Usage:     "prove that backups are whole: plists, index, every listed file",
		ArgsUsage: "[PATH ...]",
		Description: `verify reads each backup's plists and its whole index (Manifest.db, or
Manifest.mbdb for iOS 4 to 9), checks every row against the device's own
rules, runs SQLite's quick_check, and compares the listed files with the
blobs on disk: missing, left over (orphans) and wrongly sized. --deep also
reads every blob to its end, checks the digests of legacy backups and runs
the full integrity_check.

Nothing is written inside a backup: Manifest.db is opened read-only and
immutable (a database with a -wal beside it is copied to a private
temporary folder first). A backup being written now (busy) is left alone.

ENCRYPTED BACKUPS:
   Without the password an encrypted backup is checked as far as that is
   possible: its plists, and that its blobs are whole AES blocks. With the
   password (--password-file FILE, --password-stdin, $MBAUDIT_PASSWORD, or
   a prompt without echo when run on a terminal) the index is decrypted
   into a private temporary folder (mode 0700, removed when verify ends or
   is interrupted) and checked like a plain one; --deep then decrypts every
   blob in memory and checks its padding and length. No decrypted byte is
   ever written beside the backup. Deriving the key takes a few seconds per
   keybag (10,000,000 PBKDF2 rounds on current iOS); it is done once for
   identical keybags. The password is never shown or logged. A wrong
   password is an error (exit 2), and that backup is reported as checked
   without it.

EXIT STATUS:
   0    every backup is ok (or busy)
   1    a backup is incomplete, corrupt or unreadable
   2    could not verify: bad usage, a root missing, dangling or unreadable,
        a wrong password
   130  interrupted`,
		Flags: append(append(commonFlags(&o.common, "table, json, csv (one line per finding)"),
			&cli.BoolFlag{Name: "deep", Usage: "also read every blob to its end (decrypting it, with the password), check legacy digests and run integrity_check", Destination: &o.deep},
		), o.passwordFlags.flags()...),
		Action: func(c *cli.Context) error {
			return runVerify(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runVerify(ctx context.Context, o *verifyOptions, paths []string, env Env) error {
	if err := checkFormat(o.format, "table", "json", "csv"); err != nil {
		return err
	}
	// verify's heap is mostly large pointer-free arrays (32 bytes a listed
	// file and as much a blob), cheap for the collector to scan: collecting
	// at 25% growth instead of 100% costs about 1% of the CPU time and keeps
	// the peak near 60 MB at 500,000 files. (A memory limit with the default
	// GOGC peaks lower there, but makes the collector run without pause once
	// a larger backup's arrays outgrow the limit.)
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	p := newProgress(env, o.quiet)
	res, err := scan(ctx, paths, &o.common, env, p, false)
	if err != nil {
		return err
	}
	if res.rootErr != nil && len(res.backups) == 0 {
		return res.rootErr
	}
	pw, err := o.password(env, func() bool { return needsPassword(res.backups, o.deep) })
	if err != nil {
		return err
	}
	busy, _ := ParseDuration(o.busyWindow) // checked by scan
	var wrong []error
	for _, b := range res.backups {
		name := b.DisplayName()
		opt := backup.VerifyOptions{Options: o.options(env, busy), Deep: o.deep, Password: pw}
		if pw != nil {
			p.phase("unlocking " + name)
			opt.Unlocking = p.rounds
		}
		started := false
		opt.Progress = func(files, totalFiles, bytes, totalBytes int64) {
			if !started {
				started = true
				p.phase("verifying " + name)
			}
			p.bytes(files, totalFiles, bytes, totalBytes)
		}
		check, err := backup.Verify(ctx, b, opt)
		p.done()
		if errors.Is(err, backup.ErrWrongPassword) {
			wrong = append(wrong, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("verifying %s: %w", b.Path, err)
		}
		if check != nil && check.Unlocked != nil && check.Unlocked.Derive > 0 {
			p.note(fmt.Sprintf("unlocked %s: %s key-derivation rounds took %.1fs",
				name, humanize.Comma(check.Unlocked.Rounds), check.Unlocked.Derive.Seconds()))
		}
	}
	_ = sortBackups(res.backups, "device")
	doc := report.NewVerify(res.backups, env.Now())
	switch o.format {
	case "json":
		err = report.JSON(env.Stdout, doc)
	case "csv":
		err = report.VerifyCSV(env.Stdout, doc)
	default:
		err = report.VerifyTable(env.Stdout, doc, tableStyle(env, &o.common))
	}
	if err != nil {
		return err
	}
	if res.rootErr != nil {
		return res.rootErr
	}
	if len(wrong) > 0 {
		return errors.Join(wrong...)
	}
	for _, b := range res.backups {
		if b.State.Problem() {
			return errProblems
		}
	}
	return nil
}

// needsPassword reports whether a password would let verify check more:
// an encrypted index with a keybag, or (with --deep) the encrypted blobs of
// a legacy backup.
func needsPassword(bs []*backup.Backup, deep bool) bool {
	for _, b := range bs {
		if b.State == backup.StateBusy {
			continue
		}
		if b.IndexEncrypted && !b.Has(backup.KeybagMissing) {
			return true
		}
		if deep && b.Format == backup.FormatMbdb && b.Encrypted {
			return true
		}
	}
	return false
}
