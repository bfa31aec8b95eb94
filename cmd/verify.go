package cmd

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

type verifyOptions struct {
	common
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
An encrypted backup is checked as far as the password is not needed.

EXIT STATUS:
   0    every backup is ok (or busy)
   1    a backup is incomplete, corrupt or unreadable
   2    could not verify: bad usage, a root missing, dangling or unreadable
   130  interrupted`,
		Flags: append(commonFlags(&o.common, "table, json, csv (one line per finding)"),
			&cli.BoolFlag{Name: "deep", Usage: "also read every blob to its end, check legacy digests and run integrity_check", Destination: &o.deep},
		),
		Action: func(c *cli.Context) error {
			return runVerify(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runVerify(ctx context.Context, o *verifyOptions, paths []string, env Env) error {
	if err := checkFormat(o.format, "table", "json", "csv"); err != nil {
		return err
	}
	// verify's heap is a few large pointer-free arrays (28 bytes a listed
	// file), cheap for the collector to scan: collecting at 50% growth
	// instead of 100% keeps the peak well under 100 MB at 500,000 files.
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	p := newProgress(env, o.quiet)
	res, err := scan(ctx, paths, &o.common, env, p, false)
	if err != nil {
		return err
	}
	if res.rootErr != nil && len(res.backups) == 0 {
		return res.rootErr
	}
	busy, _ := ParseDuration(o.busyWindow) // checked by scan
	for _, b := range res.backups {
		name := b.DeviceName()
		if name == "" {
			name = b.ID
		}
		p.phase("verifying " + name)
		opt := backup.VerifyOptions{Options: o.options(env, busy), Deep: o.deep, Progress: p.bytes}
		_, err := backup.Verify(ctx, b, opt)
		p.done()
		if err != nil {
			return fmt.Errorf("verifying %s: %w", b.Path, err)
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
	for _, b := range res.backups {
		if b.State.Problem() {
			return errProblems
		}
	}
	return nil
}
