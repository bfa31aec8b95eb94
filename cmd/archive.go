package cmd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
)

type archiveOptions struct {
	common
	to      string
	remove  bool
	format  string
	yes     bool
	quick   bool
	logFile string
}

func newArchiveCommand(env Env) *cli.Command {
	o := &archiveOptions{}
	return &cli.Command{
		Name:      "archive",
		Usage:     "pack backups into verified .tar.zst archives, optionally removing them",
		ArgsUsage: "BACKUP...",
		Description: `archive writes each BACKUP as DIR/<id>.tar.zst (or .tar.gz) holding one
folder <id>/, readable by a plain zstd-capable tar, and <id>.tar.zst.json
beside it (device, dates, sizes, the archive's SHA-256). Each archive is
written under a temporary name, synced, read back and compared file by file
with the backup (names, sizes, SHA-256) before it is renamed into place.
If the target fills up, the partial archive is removed.

The backup stays where it is unless --remove is given; then it is removed
only after its archive was verified, through prune's safe path (root lock,
a fresh check of the backup, rename into .mbaudit-trash, then delete).
Busy and unreadable backups and symbolic links are never archived.

EXIT STATUS:
   0    every backup was archived
   1    a backup could not be archived or removed (its row says why)
   2    could not do its job: bad usage, a backup missing, locked
   130  interrupted; each backup is intact in place or fully archived`,
		Flags: append(commonFlags(&o.common, "table, json, csv"),
			&cli.StringFlag{Name: "to", Usage: "write the archives into `DIR`", Destination: &o.to},
			&cli.BoolFlag{Name: "remove", Usage: "remove each backup once its archive is verified", Destination: &o.remove},
			&cli.StringFlag{Name: "archive-format", Value: backup.FormatTarZst, Usage: "tar.zst or tar.gz", Destination: &o.format},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask before --remove (needed when stdin is not a terminal)", Destination: &o.yes},
			&cli.BoolFlag{Name: "quick", Usage: "judge states with list's checks instead of verify's", Destination: &o.quick},
			&cli.StringFlag{Name: "log", Usage: "also append each action to `FILE`", Destination: &o.logFile},
		),
		Action: func(c *cli.Context) error {
			return runArchive(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runArchive(ctx context.Context, o *archiveOptions, paths []string, env Env) error {
	if err := checkFormat(o.common.format, "table", "json", "csv"); err != nil {
		return err
	}
	if o.to == "" {
		return usagef("archive needs --to DIR")
	}
	if len(paths) == 0 {
		return usagef("archive needs at least one BACKUP folder")
	}
	if o.format != backup.FormatTarZst && o.format != backup.FormatTarGz {
		return usagef("--archive-format %q: choose tar.zst or tar.gz", o.format)
	}
	if fi, err := os.Stat(o.to); err != nil || !fi.IsDir() {
		return usagef("--to %s is not a folder", o.to)
	}
	po := &pruneOptions{common: o.common, yes: o.yes, quick: o.quick, logFile: o.logFile,
		archiveTo: o.to, archiveFormat: o.format, keepSource: !o.remove}
	return runPlan(ctx, po, paths, env, backup.Rules{Archive: true, AllowLast: true, ArchiveAll: true})
}

type unarchiveOptions struct {
	to string
}

func newUnarchiveCommand(env Env) *cli.Command {
	o := &unarchiveOptions{}
	return &cli.Command{
		Name:      "unarchive",
		Usage:     "restore a backup from an archive made by mbaudit archive",
		ArgsUsage: "ARCHIVE",
		Description: `unarchive checks ARCHIVE against the SHA-256 in its sidecar (when there is
one), extracts it into a temporary folder inside ROOT (.mbaudit-unarchive-*)
and renames the backup into place. It refuses entries that would land
outside <id>/ (absolute paths, "..", links pointing out) and never
overwrites an existing backup.

EXIT STATUS:
   0    restored
   2    could not restore: bad usage, a refused or damaged archive, the
        backup exists already
   130  interrupted; nothing is left in ROOT`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "restore into the backup root `ROOT`", Destination: &o.to},
		},
		Action: func(c *cli.Context) error {
			return runUnarchive(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runUnarchive(ctx context.Context, o *unarchiveOptions, args []string, env Env) error {
	if len(args) != 1 || o.to == "" {
		return usagef("usage: mbaudit unarchive ARCHIVE --to ROOT")
	}
	dst, err := backup.Unarchive(ctx, args[0], o.to)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, dst)
	return nil
}

// archiver returns Apply's archive step for a target folder; p (which may
// be nil) shows how far it got.
// delay is the test-only pause after each file (MBAUDIT_TEST_STEP_DELAY).
func archiver(dir, format string, env Env, p *progress, delay time.Duration) func(context.Context, *backup.Backup) (string, error) {
	return func(ctx context.Context, b *backup.Backup) (string, error) {
		opt := backup.ArchiveOptions{Format: format, Now: env.Now(), FileDelay: delay}
		if p != nil {
			name := b.DisplayName()
			step := ""
			opt.Progress = func(a backup.ArchiveProgress) {
				if a.Step != step {
					step = a.Step
					if step == backup.StepReadingBack {
						p.phase("checking the archive of " + name)
					} else {
						p.phase("archiving " + name)
					}
				}
				if a.TotalFiles == 0 {
					p.files(a.Files)
				} else {
					p.bytes(a.Files, a.TotalFiles, a.Bytes, a.TotalBytes)
				}
			}
		}
		_, dst, err := backup.Archive(ctx, b, dir, opt)
		p.done()
		return dst, err
	}
}

// cleanArchiveTemps removes the temporary archives that runs killed while
// writing left in dir, and warns of those it cannot tell about.
func cleanArchiveTemps(dir string, env Env, p *progress) error {
	removed, left, err := backup.CleanArchiveTemps(dir)
	p.done()
	for _, r := range removed {
		fmt.Fprintf(env.Stderr, "mbaudit: warning: removed a partial archive left by an interrupted run: %s\n", r)
	}
	for _, l := range left {
		who := "a writer it does not name"
		if l.PID != 0 {
			who = fmt.Sprintf("pid %d on %s", l.PID, l.Host)
		}
		fmt.Fprintf(env.Stderr, "mbaudit: warning: left %s alone: it may be a partial archive of an interrupted run, "+
			"or one being written (%s); remove it once no mbaudit writes into %s\n", l.Path, who, dir)
	}
	if err != nil {
		return fmt.Errorf("cleaning up %s: %w", dir, err)
	}
	return nil
}
