package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

type usageOptions struct {
	common
	passwordFlags
	by  string
	top int
}

func newUsageCommand(env Env) *cli.Command {
	o := &usageOptions{}
	return &cli.Command{
		Name:      "usage",
		Usage:     "show where the space goes: by app, domain or category, and what removing a backup would free",
		ArgsUsage: "[BACKUP ... | ROOT ...]",
		Description: `Given backup folders, usage reads each one's index once (Manifest.db, or
Manifest.mbdb for iOS 4 to 9) and adds up its files --by app (app, group
and plugin containers folded into their app and named from Info.plist),
domain or category, with the sizes the index lists and the bytes the
blobs take on disk. --top N adds the N largest files. No file content is
read. An encrypted index needs the backup password (--password-file,
--password-stdin, $MBAUDIT_PASSWORD or a prompt on a terminal, as for
verify): it is decrypted into a private temporary folder and removed.

Given roots (folders that hold backups, or no PATH), usage shows per
device each backup and dated copy with its size on disk and the bytes its
removal would free: files it shares by hard link with another backup free
nothing. Reclaimable bytes are what could go without losing a good backup:
whole incomplete and corrupt backups and leftover Snapshot/ folders.

In a terminal each row gets a bar; piped, the table is plain text.
CSV lists the groups (with --top, the largest files), or for roots the
backups.

EXIT STATUS:
   0    shown (whatever states the backups are in)
   2    could not: bad usage, a path missing, dangling or unreadable,
        a wrong password
   130  interrupted`,
		Flags: append(append(commonFlags(&o.common, "table, json, csv"),
			&cli.StringFlag{Name: "by", Value: "app", Usage: "group a backup's files by app, domain or category", Destination: &o.by},
			&cli.IntFlag{Name: "top", Usage: "also list the `N` largest files of each backup", Destination: &o.top},
		), o.passwordFlags.flags()...),
		Action: func(c *cli.Context) error {
			return runUsage(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runUsage(ctx context.Context, o *usageOptions, paths []string, env Env) error {
	if err := checkFormat(o.format, "table", "json", "csv"); err != nil {
		return err
	}
	by := backup.GroupBy(o.by)
	switch by {
	case backup.ByApp, backup.ByDomain, backup.ByCategory:
	default:
		return usagef("unknown --by %q (choose from app, domain, category)", o.by)
	}
	if o.top < 0 {
		return usagef("--top must be 0 or more")
	}
	p := newProgress(env, o.quiet)
	res, err := scan(ctx, paths, &o.common, env, p, false)
	if err != nil {
		return err
	}
	if res.rootErr != nil && len(res.backups) == 0 {
		return res.rootErr
	}
	var doc report.UsageDoc
	var wrong []error
	if backupFolders(paths, res.backups) {
		pw, err := o.password(env, func() bool { return needsPassword(res.backups, false) })
		if err != nil {
			return err
		}
		spaces := make([]*backup.Space, len(res.backups))
		for i, b := range res.backups {
			opt := backup.SpaceOptions{By: by, Top: o.top, Jobs: o.jobs, Password: pw}
			if pw != nil && b.IndexEncrypted {
				opt.Unlocking = p.rounds // "reading the index of ...: deriving the key ..."
			}
			p.phase("reading the index of " + b.ID)
			s, err := backup.Breakdown(ctx, b, opt)
			p.done()
			if errors.Is(err, backup.ErrWrongPassword) {
				wrong = append(wrong, err)
				err = nil
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", b.Path, err)
			}
			if s.Unread != "" {
				fmt.Fprintf(env.Stderr, "mbaudit: warning: %s: index not read: %s\n", b.Path, s.Unread)
			}
			spaces[i] = s
		}
		doc = report.NewUsageBackups(res.backups, spaces, by, env.Now())
	} else {
		busy, _ := ParseDuration(o.busyWindow) // checked by scan
		p.phase("measuring backups")
		err := backup.Measure(ctx, res.backups, o.jobs, p.files)
		p.done()
		if err != nil {
			return err
		}
		for _, b := range res.backups {
			b.Judge(env.Now(), busy)
		}
		doc = report.NewUsageDevices(res.backups, by, env.Now())
	}
	switch o.format {
	case "json":
		err = report.JSON(env.Stdout, doc)
	case "csv":
		err = report.UsageCSV(env.Stdout, doc, o.top > 0)
	default:
		st := tableStyle(env, &o.common)
		width := 0
		if st.Humanize { // a terminal, and not --quiet
			width = termWidth(env)
		}
		err = report.UsageTable(env.Stdout, doc, st, width)
	}
	if err != nil {
		return err
	}
	if res.rootErr != nil {
		return res.rootErr
	}
	return errors.Join(wrong...)
}

// backupFolders reports whether the PATHs given are all backup folders
// themselves (the single-backup view) rather than roots.
func backupFolders(paths []string, bs []*backup.Backup) bool {
	if len(paths) == 0 || len(bs) == 0 {
		return false
	}
	given := map[string]bool{}
	for _, p := range paths {
		given[filepath.Clean(p)] = true
	}
	for _, b := range bs {
		if !given[filepath.Clean(b.Path)] {
			return false
		}
	}
	return true
}

// termWidth is the width of the terminal on stdout, else $COLUMNS, else 80.
func termWidth(env Env) int {
	if f, ok := env.Stdout.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if n, err := strconv.Atoi(env.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
