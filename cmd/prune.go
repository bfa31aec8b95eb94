package cmd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/report"
)

type pruneOptions struct {
	common
	keepLast   int
	keepWithin string
	incomplete bool
	corrupt    bool
	maxTotal   string
	allowLast  bool
	dryRun     bool
	yes        bool
	quick      bool
	logFile    string

	archiveTo     string
	archiveFormat string
	keepSource    bool // archive without --remove
}

// processNames lists the running processes; tests replace it.
var processNames = backup.ProcessNames

// stepDelayEnv is a test-only hook: a pause after each step of a removal,
// so that crash tests can kill mbaudit between steps.
const stepDelayEnv = "MBAUDIT_TEST_STEP_DELAY"

func newPruneCommand(env Env) *cli.Command {
	o := &pruneOptions{}
	return &cli.Command{
		Name:      "prune",
		Usage:     "remove old, interrupted and corrupt backups by rules, plan first",
		ArgsUsage: "[PATH ...]",
		Description: `prune decides per device (dated copies count as the device's backups)
which backups go, prints the plan, and, unless --dry-run is given, removes
them. A backup goes when --incomplete, --corrupt or --max-total selects it,
or when keep rules (--keep-last, --keep-within, which keep ok backups) were
given and none keeps it. Keep rules win. At least one rule is needed.

Never removed without --allow-last: the newest ok backup of a device and a
device's last remaining backup. Never touched: busy and unreadable backups,
symbolic links, and anything while a backup program (AppleMobileBackup,
AppleMobileDeviceHelper, idevicebackup2, pymobiledevice3) runs.

State comes from verify's checks (--quick: list's). Without --dry-run,
prune asks once on a terminal, else needs --yes; it locks each root
(.mbaudit-lock), checks each backup again right before removing it, and
removes by first renaming it into <root>/.mbaudit-trash, so that nothing
half-deleted ever looks like a backup. A later run finishes what an
interrupted one left there.

EXIT STATUS:
   0    the plan was shown (--dry-run) or carried out
   1    a planned removal could not be done (the row says why)
   2    could not do its job: no rule, bad usage, a root missing, locked
        by another mbaudit, or not confirmed (no terminal and no --yes)
   130  interrupted; each backup is intact in place or removed`,
		Flags: append(commonFlags(&o.common, "table, json, csv"),
			&cli.IntFlag{Name: "keep-last", Usage: "keep the `N` newest ok backups of each device", Destination: &o.keepLast},
			&cli.StringFlag{Name: "keep-within", Usage: "keep the ok backups made within `DURATION` before now (30d, 6mo, 1y)", Destination: &o.keepWithin},
			&cli.BoolFlag{Name: "incomplete", Usage: "remove incomplete backups", Destination: &o.incomplete},
			&cli.BoolFlag{Name: "corrupt", Usage: "remove corrupt backups", Destination: &o.corrupt},
			&cli.StringFlag{Name: "max-total", Usage: "in each root, remove the oldest backups until the total fits in `SIZE` (50GB, 40GiB)", Destination: &o.maxTotal},
			&cli.BoolFlag{Name: "allow-last", Usage: "allow removing a device's newest ok backup and its last backup", Destination: &o.allowLast},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the plan and change nothing", Destination: &o.dryRun},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask (needed when stdin is not a terminal)", Destination: &o.yes},
			&cli.BoolFlag{Name: "quick", Usage: "judge states with list's checks instead of verify's", Destination: &o.quick},
			&cli.StringFlag{Name: "log", Usage: "also append each action to `FILE`", Destination: &o.logFile},
			&cli.StringFlag{Name: "archive-to", Usage: "archive the backups that go into `DIR` (verified .tar.zst) before removing them", Destination: &o.archiveTo},
			&cli.StringFlag{Name: "archive-format", Value: backup.FormatTarZst, Usage: "with --archive-to: tar.zst or tar.gz", Destination: &o.archiveFormat},
		),
		Action: func(c *cli.Context) error {
			return runPrune(c.Context, o, c.Args().Slice(), env)
		},
	}
}

func (o *pruneOptions) rules() (backup.Rules, error) {
	r := backup.Rules{KeepLast: o.keepLast, Incomplete: o.incomplete, Corrupt: o.corrupt, AllowLast: o.allowLast}
	if o.keepLast < 0 {
		return r, usagef("--keep-last must be at least 1")
	}
	if o.keepWithin != "" {
		d, err := ParseDuration(o.keepWithin)
		if err != nil {
			return r, usagef("--keep-within: %v", err)
		}
		if d <= 0 {
			return r, usagef("--keep-within must be more than 0")
		}
		r.KeepWithin, r.KeepWithinText = d, o.keepWithin
	}
	if o.maxTotal != "" {
		n, err := humanize.ParseBytes(o.maxTotal)
		if err != nil || n == 0 || n > 1<<62 {
			return r, usagef("--max-total: %q is not a size, e.g. 50GB or 40GiB", o.maxTotal)
		}
		r.MaxTotal, r.MaxTotalText = int64(n), o.maxTotal
	}
	if o.archiveTo != "" {
		if fi, err := os.Stat(o.archiveTo); err != nil || !fi.IsDir() {
			return r, usagef("--archive-to %s is not a folder", o.archiveTo)
		}
		if o.archiveFormat != backup.FormatTarZst && o.archiveFormat != backup.FormatTarGz {
			return r, usagef("--archive-format %q: choose tar.zst or tar.gz", o.archiveFormat)
		}
		r.Archive = true
	}
	if !r.Given() {
		return r, usagef("no rule given: say what to remove with --keep-last N, --keep-within DURATION, " +
			"--incomplete, --corrupt or --max-total SIZE (add --dry-run to see the plan first)")
	}
	return r, nil
}

func runPrune(ctx context.Context, o *pruneOptions, paths []string, env Env) error {
	if err := checkFormat(o.format, "table", "json", "csv"); err != nil {
		return err
	}
	rules, err := o.rules()
	if err != nil {
		return err
	}
	return runPlan(ctx, o, paths, env, rules)
}

// runPlan is prune and archive: plan, show, confirm, lock, act.
func runPlan(ctx context.Context, o *pruneOptions, paths []string, env Env, rules backup.Rules) error {
	var err error
	var delay time.Duration
	if s := env.Getenv(stepDelayEnv); s != "" {
		if delay, err = time.ParseDuration(s); err != nil {
			return usagef("%s: %v", stepDelayEnv, err)
		}
	}
	logw := io.Writer(io.Discard)
	if o.logFile != "" && !o.dryRun {
		f, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return usagef("--log: %v", err)
		}
		defer f.Close()
		logw = f
	}
	p := newProgress(env, o.quiet)
	logf := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		p.done()
		fmt.Fprintf(env.Stderr, "mbaudit: %s\n", msg)
		fmt.Fprintf(logw, "%s %s\n", time.Now().UTC().Format(time.RFC3339), msg)
	}

	res, err := scan(ctx, paths, &o.common, env, p, true)
	if err != nil {
		return err
	}
	// A root that cannot be read could hold backups the rules count on
	// (a device's newest): decide nothing without it.
	if res.rootErr != nil {
		return res.rootErr
	}
	busy, _ := ParseDuration(o.busyWindow) // checked by scan
	check := func(ctx context.Context, b *backup.Backup) error {
		if o.quick || b.State == backup.StateBusy {
			return nil
		}
		_, err := backup.Verify(ctx, b, backup.VerifyOptions{Options: o.options(env, busy)})
		return err
	}
	for _, b := range res.backups {
		p.phase("verifying " + b.ID)
		err := check(ctx, b)
		p.done()
		if err != nil {
			return fmt.Errorf("verifying %s: %w", b.Path, err)
		}
	}
	running := func() string {
		names, ok := processNames()
		if !ok {
			return ""
		}
		return backup.RunningBackupProgram(names)
	}
	if _, ok := processNames(); !ok {
		fmt.Fprintf(env.Stderr, "mbaudit: warning: cannot list the running processes: not checking for a running backup program\n")
	}
	rules.BackupProgram = running()
	plan := backup.MakePlan(res.backups, rules, env.Now())
	acting := plan.Acting()

	if !o.dryRun && len(acting) > 0 && !o.keepSource {
		verb := "Remove"
		if rules.Archive {
			verb = "Archive and remove"
		}
		if err := confirm(env, o.yes, verb, len(acting), plan.BytesFreed); err != nil {
			return err
		}
	}
	if !o.dryRun && (len(acting) > 0 || len(res.backups) > 0) {
		if !o.keepSource {
			unlock, err := lockRoots(ctx, plan, env, logf)
			if err != nil {
				return err
			}
			defer unlock()
		}
		recheck := func(ctx context.Context, b *backup.Backup) (*backup.Backup, error) {
			c := backup.Candidate{Path: b.Path, Symlink: b.Symlink}
			opt := o.options(env, busy)
			opt.Now = env.Now()
			bs, err := backup.List(ctx, []backup.Candidate{c}, opt, nil)
			if err != nil {
				return nil, err
			}
			if err := check(ctx, bs[0]); err != nil {
				return nil, err
			}
			return bs[0], nil
		}
		if rules.Archive && len(acting) > 0 {
			if err := cleanArchiveTemps(o.archiveTo, env, p); err != nil {
				return err
			}
		}
		err = backup.Apply(ctx, plan, backup.ApplyOptions{
			Recheck: recheck, BackupProgram: running, StepDelay: delay, KeepSource: o.keepSource,
			Archive:        archiver(o.archiveTo, o.archiveFormat, env, p, delay),
			RemoveProgress: removeProgress(p),
			Log:            func(msg string) { logf("%s", msg) },
		})
		p.done()
		if err != nil {
			return err
		}
		plan.Recount()
		if o.keepSource {
			plan.BytesFreed = 0
		}
	}

	doc := report.NewPrune(plan, res.volumes, plan.FreedOn(res.volumes), o.dryRun, env.Now())
	switch o.format {
	case "json":
		err = report.JSON(env.Stdout, doc)
	case "csv":
		err = report.PruneCSV(env.Stdout, doc)
	default:
		err = report.PruneTable(env.Stdout, doc, tableStyle(env, &o.common))
	}
	if err != nil {
		return err
	}
	if !o.dryRun {
		for _, r := range acting {
			if !r.Done {
				return errProblems
			}
		}
	}
	return nil
}

// confirm asks once on a terminal; elsewhere it needs --yes.
func confirm(env Env, yes bool, verb string, n int, bytes int64) error {
	if yes {
		return nil
	}
	what := "backup"
	if n != 1 {
		what = "backups"
	}
	if !env.IsTerminal(env.Stdin) {
		return usagef("refusing to %s %d %s without --yes (stdin is not a terminal); "+
			"see the plan with --dry-run", strings.ToLower(verb), n, what)
	}
	fmt.Fprintf(env.Stderr, "%s %d %s, %s? [y/N] ", verb, n, what, humanize.Bytes(uint64(bytes)))
	line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return usagef("not confirmed: nothing was changed")
}

// lockRoots locks each root the plan touches, in a fixed order, and
// finishes what an interrupted prune left in its holding folder.
func lockRoots(ctx context.Context, plan *backup.Plan, env Env, logf func(string, ...any)) (func(), error) {
	seen := map[string]bool{}
	var roots []string
	for _, r := range plan.Rows {
		if !seen[r.Root] {
			seen[r.Root] = true
			roots = append(roots, r.Root)
		}
	}
	sort.Strings(roots)
	var locks []*backup.Lock
	unlock := func() {
		for _, l := range locks {
			l.Release()
		}
	}
	for _, root := range roots {
		l, err := backup.LockRoot(root, env.Now())
		if err != nil {
			unlock()
			return nil, err
		}
		locks = append(locks, l)
		if l.Stale != nil {
			fmt.Fprintf(env.Stderr, "mbaudit: warning: took over a stale lock in %s left by a process that is gone (%s)\n", root, *l.Stale)
		}
		done, err := backup.FinishTrash(ctx, root)
		if len(done) > 0 {
			logf("finished removing %d backup(s) an interrupted prune left in %s: %s",
				len(done), root, strings.Join(done, ", "))
		}
		if err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}

// removeProgress returns Apply's RemoveProgress for p: "removing <id>: N
// files". nil when p is.
func removeProgress(p *progress) func(*backup.Backup) func(int64) {
	if p == nil {
		return nil
	}
	return func(b *backup.Backup) func(int64) {
		p.phase("removing " + b.ID)
		return p.files
	}
}
