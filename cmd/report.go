package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

// volumesFor tells the free space of the volumes under the roots; tests
// replace it to stand in for a full disk.
var volumesFor = backup.Volumes

type reportOptions struct {
	common
	verify     bool
	deep       bool
	staleAfter string
	maxSize    string
	minFree    string
	quietOK    bool
	output     string
}

func newReportCommand(env Env) *cli.Command {
	o := &reportOptions{}
	return &cli.Command{
		Name:      "report",
		Usage:     "health check for cron and launchd: silent when all is well, speaks up when a person is needed",
		ArgsUsage: "[PATH ...]",
		Description: `report runs the checks of list (or of verify with --verify) over every
backup, then the policy checks: a device whose newest complete backup is
older than --stale-after (or that has none), a backup larger than
--max-size, and a volume with less free space than the newest backup of
its largest device plus 128 MiB (or than --min-free, which replaces that
need). It prints one line per device, problems first, each problem with
what to do about it, and the bytes that could go (incomplete and corrupt
backups, leftover Snapshot/ folders, orphan blobs found by --verify).

Formats: text (alias table), json, markdown (for mail or a ticket) and
prom (Prometheus text format for node_exporter's textfile collector).
--output FILE writes to a temporary file beside FILE and renames it into
place, so a collector never reads half a file. --quiet-ok prints nothing
when all is well, so cron mails only on trouble. On macOS, free space does
not count purgeable space; the report says so when space is short.

EXIT STATUS:
   0    nothing needs a person (busy backups alone are fine)
   1    a backup is incomplete, corrupt or unreadable, or a threshold is crossed
   2    could not report: bad usage, a root missing, dangling or unreadable
   130  interrupted`,
		Flags: append(commonFlags(&o.common, "text (or table), json, markdown, prom"),
			&cli.BoolFlag{Name: "verify", Usage: "run verify's checks (every listed file) instead of list's", Destination: &o.verify},
			&cli.BoolFlag{Name: "deep", Usage: "with --verify: also read every blob to its end", Destination: &o.deep},
			&cli.StringFlag{Name: "stale-after", Value: "14d", Usage: "a device whose newest complete backup is older than `DURATION` is stale", Destination: &o.staleAfter},
			&cli.StringFlag{Name: "max-size", Usage: "a backup larger than `SIZE` (e.g. 50GB, 40GiB) is a problem", Destination: &o.maxSize},
			&cli.StringFlag{Name: "min-free", Usage: "a volume with less than `SIZE` free is a problem (replaces the computed need)", Destination: &o.minFree},
			&cli.BoolFlag{Name: "quiet-ok", Usage: "print nothing when all is well", Destination: &o.quietOK},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the report to `FILE` atomically instead of stdout", Destination: &o.output},
		),
		Action: func(c *cli.Context) error {
			return runReport(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func runReport(ctx context.Context, o *reportOptions, paths []string, env Env) error {
	if o.format == "table" {
		o.format = "text"
	}
	if err := checkFormat(o.format, "text", "json", "markdown", "prom"); err != nil {
		return err
	}
	pol, err := o.policy()
	if err != nil {
		return err
	}
	if o.deep && !o.verify {
		return usagef("--deep needs --verify")
	}
	p := newProgress(env, o.quiet)
	res, err := scan(ctx, paths, &o.common, env, p, true)
	if err != nil {
		return err
	}
	if res.rootErr != nil && len(res.backups) == 0 {
		return res.rootErr
	}
	if o.verify {
		busy, _ := ParseDuration(o.busyWindow) // checked by scan
		for _, b := range res.backups {
			p.phase("verifying " + b.ID)
			_, err := backup.Verify(ctx, b, backup.VerifyOptions{Options: o.options(env, busy), Deep: o.deep, Progress: p.bytes})
			p.done()
			if err != nil {
				return fmt.Errorf("verifying %s: %w", b.Path, err)
			}
		}
	}
	vols := volumesFor(res.roots)
	h := backup.Assess(res.backups, vols, backup.DevOf, pol, env.Now())
	doc := report.NewHealth(h, env.Now(), env.GOOS == "darwin")

	problems := !doc.OK
	if !problems && o.quietOK {
		if o.output != "" {
			// A textfile collector still wants fresh numbers.
			if err := writeReport(o, doc, env); err != nil {
				return err
			}
		}
		return res.rootErr
	}
	if err := writeReport(o, doc, env); err != nil {
		return err
	}
	if res.rootErr != nil {
		return res.rootErr
	}
	if problems {
		return errProblems
	}
	return nil
}

// policy reads the threshold flags.
func (o *reportOptions) policy() (backup.Policy, error) {
	var p backup.Policy
	d, err := ParseDuration(o.staleAfter)
	if err != nil {
		return p, usagef("--stale-after: %v", err)
	}
	p.StaleAfter = d
	for _, f := range []struct {
		name, val string
		dst       *int64
	}{{"--max-size", o.maxSize, &p.MaxSize}, {"--min-free", o.minFree, &p.MinFree}} {
		if f.val == "" {
			continue
		}
		n, err := humanize.ParseBytes(f.val)
		if err != nil || n == 0 || n > 1<<62 {
			return p, usagef("%s: %q is not a size: write e.g. 50GB or 40GiB", f.name, f.val)
		}
		*f.dst = int64(n)
	}
	return p, nil
}

// writeReport renders the document to stdout, or atomically to --output.
func writeReport(o *reportOptions, doc report.HealthDoc, env Env) error {
	var buf bytes.Buffer
	var err error
	switch o.format {
	case "json":
		err = report.JSON(&buf, doc)
	case "markdown":
		err = report.HealthMarkdown(&buf, doc)
	case "prom":
		err = report.HealthProm(&buf, doc)
	default:
		st := tableStyle(env, &o.common)
		if o.output != "" {
			st = report.Style{Now: env.Now()}
		}
		err = report.HealthText(&buf, doc, st)
	}
	if err != nil {
		return err
	}
	if o.output == "" {
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	return writeFileAtomic(o.output, buf.Bytes())
}

// writeFileAtomic writes data to a temporary file in path's folder, syncs
// it and renames it over path, so readers see the old file or the new one,
// never a part. On failure the temporary file is removed.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, ".mbaudit-"+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	// Readable by a collector running as another user, as a plain
	// os.WriteFile would make it.
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // make the rename durable where the platform allows
		d.Close()
	}
	return nil
}
