package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// executable is the absolute path of this program; tests replace it.
var executable = os.Executable

// LaunchAgentLabel is the contract's label of the LaunchAgent.
const LaunchAgentLabel = "org.mbaudit.report"

const (
	systemdService = "mbaudit-report.service"
	systemdTimer   = "mbaudit-report.timer"
)

type scheduleOptions struct {
	launchd, cron, systemd bool
	at                     string
	install, uninstall     bool
}

func newScheduleCommand(env Env) *cli.Command {
	o := &scheduleOptions{}
	return &cli.Command{
		Name:      "schedule",
		Usage:     "print (or --install) a daily `mbaudit report --quiet-ok` job for launchd, cron or systemd",
		ArgsUsage: "--launchd|--cron|--systemd [--at HH:MM] [PATH ...]",
		Description: `schedule prints a job that runs ` + "`mbaudit report --quiet-ok PATH...`" + ` every
day at --at (default 09:00), with this program's absolute path and the
roots made absolute (without PATH: $MBAUDIT_ROOT, else the macOS default):

   --launchd  a macOS LaunchAgent (label org.mbaudit.report) that logs to
              ~/Library/Logs/mbaudit. The program it runs needs Full Disk
              Access to read ~/Library/Application Support/MobileSync.
   --systemd  a systemd user service and timer (Persistent=true: a run
              missed while the machine was off happens at the next boot).
   --cron     a crontab line; cron mails what the job prints.

--install writes the LaunchAgent to ~/Library/LaunchAgents or the units to
~/.config/systemd/user, records what it wrote in
~/.config/mbaudit/installed.json and prints what to run next; --uninstall
removes exactly the files recorded. For cron, --install only prints the
line to add with crontab -e. mbaudit never runs launchctl, systemctl or
crontab itself.

EXIT STATUS:
   0    printed, installed or uninstalled
   2    bad usage, or a file could not be written or removed`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "launchd", Usage: "a macOS LaunchAgent", Destination: &o.launchd},
			&cli.BoolFlag{Name: "cron", Usage: "a crontab line", Destination: &o.cron},
			&cli.BoolFlag{Name: "systemd", Usage: "a systemd user service and timer", Destination: &o.systemd},
			&cli.StringFlag{Name: "at", Value: "09:00", Usage: "run daily at `HH:MM` (local time)", Destination: &o.at},
			&cli.BoolFlag{Name: "install", Usage: "write the files and record them", Destination: &o.install},
			&cli.BoolFlag{Name: "uninstall", Usage: "remove the files --install recorded", Destination: &o.uninstall},
		},
		Action: func(c *cli.Context) error {
			return runSchedule(c.Context, o, c.Args().Slice(), env)
		},
	}
}

// scheduleFile is one file a scheduler needs.
type scheduleFile struct {
	Path    string
	Content string
}

func runSchedule(_ context.Context, o *scheduleOptions, paths []string, env Env) error {
	if o.uninstall {
		if o.install || len(paths) > 0 {
			return usagef("--uninstall takes no PATH and no --install")
		}
		return uninstallSchedule(env)
	}
	kinds := 0
	for _, b := range []bool{o.launchd, o.cron, o.systemd} {
		if b {
			kinds++
		}
	}
	if kinds != 1 {
		return usagef("choose one of --launchd, --cron or --systemd")
	}
	hour, minute, err := parseAt(o.at)
	if err != nil {
		return err
	}
	if env.Home == "" {
		return fmt.Errorf("no home directory: set HOME")
	}
	rs, err := roots(paths, env)
	if err != nil {
		return err
	}
	for i, r := range rs {
		if rs[i], err = filepath.Abs(r); err != nil {
			return err
		}
	}
	exe, err := executable()
	if err != nil {
		return fmt.Errorf("finding this program's path: %w", err)
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return err
	}
	args := append([]string{exe, "report", "--quiet-ok"}, rs...)

	var files []scheduleFile
	var next []string
	switch {
	case o.launchd:
		logs := filepath.Join(env.Home, "Library", "Logs", "mbaudit")
		path := filepath.Join(env.Home, "Library", "LaunchAgents", LaunchAgentLabel+".plist")
		files = []scheduleFile{{path, launchAgent(args, hour, minute, logs)}}
		next = []string{
			"give Full Disk Access to " + exe + " (System Settings > Privacy & Security > Full Disk Access), or the job cannot read the backups",
			"load it: launchctl bootstrap gui/$(id -u) " + path,
			"problems are written to " + filepath.Join(logs, "report.log"),
		}
	case o.systemd:
		dir := filepath.Join(env.Home, ".config", "systemd", "user")
		files = []scheduleFile{
			{filepath.Join(dir, systemdService), systemdServiceUnit(args)},
			{filepath.Join(dir, systemdTimer), systemdTimerUnit(hour, minute)},
		}
		next = []string{
			"enable it: systemctl --user daemon-reload && systemctl --user enable --now " + systemdTimer,
			"problems are in the journal: journalctl --user -u " + systemdService,
		}
	case o.cron:
		line := cronLine(args, hour, minute)
		if o.install {
			fmt.Fprintf(env.Stdout, "%s\n\nadd the line above with `crontab -e` (mbaudit does not edit your crontab); cron mails what the job prints\n", line)
			return nil
		}
		fmt.Fprintf(env.Stdout, "# mbaudit: daily backup health check; add with `crontab -e`\n%s\n", line)
		return nil
	}

	if !o.install {
		for i, f := range files {
			if len(files) > 1 {
				if i > 0 {
					fmt.Fprintln(env.Stdout)
				}
				fmt.Fprintf(env.Stdout, "# %s\n", f.Path)
			}
			fmt.Fprint(env.Stdout, f.Content)
		}
		fmt.Fprintf(env.Stderr, "mbaudit: note: nothing written; add --install to write %s\n", strings.Join(filePaths(files), " and "))
		for _, n := range next {
			fmt.Fprintf(env.Stderr, "mbaudit: note: then %s\n", n)
		}
		return nil
	}
	if err := installSchedule(env, files); err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(env.Stdout, "wrote %s\n", f.Path)
	}
	fmt.Fprintf(env.Stdout, "recorded in %s (mbaudit schedule --uninstall removes them)\n\nnext:\n", manifestPath(env))
	for _, n := range next {
		fmt.Fprintf(env.Stdout, "  - %s\n", n)
	}
	if o.launchd {
		// launchd does not create the folder of its log files.
		if err := os.MkdirAll(filepath.Join(env.Home, "Library", "Logs", "mbaudit"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func filePaths(fs []scheduleFile) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

var atRE = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})$`)

func parseAt(s string) (int, int, error) {
	m := atRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, usagef("--at %q: write a time as HH:MM, e.g. 09:00", s)
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	if h > 23 || mi > 59 {
		return 0, 0, usagef("--at %q: no such time of day", s)
	}
	return h, mi, nil
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// launchAgent is the LaunchAgent plist.
func launchAgent(args []string, hour, minute int, logs string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by mbaudit schedule: a daily mbaudit report.
     The program below needs Full Disk Access (System Settings > Privacy & Security
     > Full Disk Access) to read the backups. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + LaunchAgentLabel + `</string>
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range args {
		fmt.Fprintf(&b, "\t\t<string>%s</string>\n", xmlText(a))
	}
	fmt.Fprintf(&b, `	</array>
	<key>StartCalendarInterval</key>
	<dict>
		<key>Hour</key>
		<integer>%d</integer>
		<key>Minute</key>
		<integer>%d</integer>
	</dict>
	<key>StandardOutPath</key>
	<string>%s</string>
	<key>StandardErrorPath</key>
	<string>%s</string>
	<key>ProcessType</key>
	<string>Background</string>
</dict>
</plist>
`, hour, minute, xmlText(filepath.Join(logs, "report.log")), xmlText(filepath.Join(logs, "report.err.log")))
	return b.String()
}

// systemdQuote quotes one word of an ExecStart line.
func systemdQuote(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func systemdServiceUnit(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = systemdQuote(a)
	}
	return `# Written by mbaudit schedule; removed by mbaudit schedule --uninstall.
[Unit]
Description=mbaudit report: check the iOS device backups

[Service]
Type=oneshot
ExecStart=` + strings.Join(q, " ") + `
`
}

func systemdTimerUnit(hour, minute int) string {
	return fmt.Sprintf(`# Written by mbaudit schedule; removed by mbaudit schedule --uninstall.
[Unit]
Description=Daily mbaudit report

[Timer]
OnCalendar=*-*-* %02d:%02d:00
Persistent=true

[Install]
WantedBy=timers.target
`, hour, minute)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes a word for sh; cron also needs % escaped.
func shellQuote(s string) string {
	if !shellSafe.MatchString(s) {
		s = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return strings.ReplaceAll(s, "%", `\%`)
}

func cronLine(args []string, hour, minute int) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return fmt.Sprintf("%d %d * * * %s", minute, hour, strings.Join(q, " "))
}

// installed is the record of what --install wrote.
type installed struct {
	SchemaVersion int       `json:"schema_version"`
	Files         []string  `json:"files"`
	InstalledAt   time.Time `json:"installed_at"`
}

func manifestPath(env Env) string {
	return filepath.Join(env.Home, ".config", "mbaudit", "installed.json")
}

func readInstalled(env Env) (*installed, error) {
	data, err := os.ReadFile(manifestPath(env))
	if errors.Is(err, fs.ErrNotExist) {
		return &installed{SchemaVersion: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var m installed
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", manifestPath(env), err)
	}
	return &m, nil
}

func writeInstalled(env Env, m *installed) error {
	if len(m.Files) == 0 {
		err := os.Remove(manifestPath(env))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(manifestPath(env)), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(manifestPath(env), append(data, '\n'))
}

// installSchedule writes the files, refusing to overwrite one it did not
// write itself, and records them.
func installSchedule(env Env, files []scheduleFile) error {
	m, err := readInstalled(env)
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, f := range m.Files {
		mine[f] = true
	}
	for _, f := range files {
		if _, err := os.Lstat(f.Path); err == nil && !mine[f.Path] {
			return fmt.Errorf("%s exists and was not written by mbaudit: remove it or move it away first", f.Path)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(f.Path, []byte(f.Content)); err != nil {
			return err
		}
		if !mine[f.Path] {
			m.Files = append(m.Files, f.Path)
			mine[f.Path] = true
		}
		// Record as we go, so a failure half-way still lets --uninstall
		// remove what was written.
		m.SchemaVersion, m.InstalledAt = 1, env.Now().UTC().Truncate(time.Second)
		if err := writeInstalled(env, m); err != nil {
			return err
		}
	}
	return nil
}

// uninstallSchedule removes exactly the files --install recorded.
func uninstallSchedule(env Env) error {
	m, err := readInstalled(env)
	if err != nil {
		return err
	}
	if len(m.Files) == 0 {
		fmt.Fprintln(env.Stdout, "nothing to uninstall: mbaudit schedule --install has written nothing here")
		return nil
	}
	var left []string
	var errs []error
	launchd, systemd := false, false
	for _, f := range m.Files {
		err := os.Remove(f)
		switch {
		case err == nil:
			fmt.Fprintf(env.Stdout, "removed %s\n", f)
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(env.Stdout, "already gone: %s\n", f)
		default:
			left = append(left, f)
			errs = append(errs, err)
			continue
		}
		switch filepath.Base(f) {
		case LaunchAgentLabel + ".plist":
			launchd = true
		case systemdTimer, systemdService:
			systemd = true
		}
	}
	m.Files = left
	if err := writeInstalled(env, m); err != nil {
		errs = append(errs, err)
	}
	if launchd {
		fmt.Fprintf(env.Stdout, "next: unload the agent if it is loaded: launchctl bootout gui/$(id -u)/%s\n", LaunchAgentLabel)
	}
	if systemd {
		fmt.Fprintf(env.Stdout, "next: stop the timer if it runs: systemctl --user stop %s; rm -f ~/.config/systemd/user/timers.target.wants/%s; systemctl --user daemon-reload\n", systemdTimer, systemdTimer)
	}
	return errors.Join(errs...)
}
