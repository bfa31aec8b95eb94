package cmd

import (
	"context"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

type listOptions struct {
	common
	sort string
}

func newListCommand(env Env) *cli.Command {
	o := &listOptions{}
	return &cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "show every backup with its device, date, size and state",
		ArgsUsage: "[PATH ...]",
		Description: `list is the quick view: it reads each backup's plists, the header of its
index and the size of its folder, never every listed file (verify does).

STATES:
   ok          complete and consistent as far as list can tell
   incomplete  interrupted or partial: a plist, the index or files missing,
               an unfinished snapshot
   corrupt     metadata that exists but cannot be trusted
   busy        unfinished and changed within --busy-window: being written now
   unreadable  mbaudit could not read what it needed

EXIT STATUS:
   0    listed (whatever states it shows)
   2    could not list: bad usage, a root missing, dangling or unreadable
   130  interrupted`,
		Flags: append(commonFlags(&o.common, "table, json, csv"),
			&cli.StringFlag{Name: "sort", Value: "device", Usage: "order: device, date (newest first) or size (largest first)", Destination: &o.sort},
		),
		Action: func(c *cli.Context) error {
			return runList(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runList(ctx context.Context, o *listOptions, paths []string, env Env) error {
	if err := checkFormat(o.format, "table", "json", "csv"); err != nil {
		return err
	}
	if err := sortBackups(nil, o.sort); err != nil {
		return err
	}
	res, err := scan(ctx, paths, &o.common, env, newProgress(env, o.quiet), true)
	if err != nil {
		return err
	}
	if res.rootErr != nil && len(res.backups) == 0 {
		return res.rootErr // never "0 backups" for a root that is not there
	}
	_ = sortBackups(res.backups, o.sort)
	doc := report.NewList(res.backups, res.roots, res.skipped, res.volumes, env.Now(),
		report.Privacy{ShowIdentifiers: o.showIdentifiers})
	switch o.format {
	case "json":
		err = report.JSON(env.Stdout, doc)
	case "csv":
		err = report.ListCSV(env.Stdout, doc)
	default:
		err = report.ListTable(env.Stdout, doc, tableStyle(env, &o.common))
	}
	if err != nil {
		return err
	}
	return res.rootErr
}

// sortBackups orders the backups for display; with nil it only checks the
// order's name.
func sortBackups(bs []*backup.Backup, order string) error {
	switch order {
	case "device":
		sort.SliceStable(bs, func(i, j int) bool {
			a, b := bs[i], bs[j]
			if x, y := strings.ToLower(a.DeviceName()), strings.ToLower(b.DeviceName()); x != y {
				return x < y
			}
			if a.UDID != b.UDID {
				return a.UDID < b.UDID
			}
			return backup.NewerThan(a, b)
		})
	case "date":
		sort.SliceStable(bs, func(i, j int) bool { return backup.NewerThan(bs[i], bs[j]) })
	case "size":
		sort.SliceStable(bs, func(i, j int) bool {
			if bs[i].Usage.DiskBytes != bs[j].Usage.DiskBytes {
				return bs[i].Usage.DiskBytes > bs[j].Usage.DiskBytes
			}
			return bs[i].ID < bs[j].ID
		})
	default:
		return usagef("unknown --sort %q (choose from device, date, size)", order)
	}
	return nil
}

// tableStyle decides the decorations of a table on stdout.
func tableStyle(env Env, o *common) report.Style {
	tty := env.IsTerminal(env.Stdout) && !o.quiet
	return report.Style{
		Color:    tty && !o.noColor && env.Getenv("NO_COLOR") == "",
		Humanize: tty,
		Now:      env.Now(),
	}
}
