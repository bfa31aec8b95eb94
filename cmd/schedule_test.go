package cmd

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"howett.net/plist"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenFile compares got with testdata/NAME.golden (rewritten with -update).
func goldenFile(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (rerun with -update if intended):\n%s", name, path, got)
	}
}

const fakeExe = "/opt/mbaudit/bin/mbaudit"

// scheduleEnv is a test environment whose program lives at fakeExe and
// whose home is /home/ana (or a temporary folder when writing).
func scheduleEnv(t *testing.T, home string) Env {
	t.Helper()
	old := executable
	executable = func() (string, error) { return fakeExe, nil }
	t.Cleanup(func() { executable = old })
	env := testEnv(t)
	env.Home = home
	return env
}

func TestScheduleGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"schedule-launchd", []string{"schedule", "--launchd", "/Volumes/Backup Disk/MobileSync"}},
		{"schedule-systemd", []string{"schedule", "--systemd", "--at", "21:30", "/srv/backups/iphone", "/srv/a b%$"}},
		{"schedule-cron", []string{"schedule", "--cron", "--at", "7:05", "/srv/backups/iphone", "/srv/it's%here"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, scheduleEnv(t, "/home/ana"), tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			goldenFile(t, tt.name, out)
		})
	}
}

// The LaunchAgent parses back as a plist with the right program arguments
// and calendar interval.
func TestScheduleLaunchdPlist(t *testing.T) {
	root := "/Volumes/Backup Disk/<Mobile> & Sync"
	_, out, stderr := run(t, scheduleEnv(t, "/Users/ana"), "schedule", "--launchd", "--at", "18:45", root)
	var agent struct {
		Label                 string
		ProgramArguments      []string
		StartCalendarInterval struct{ Hour, Minute int }
		StandardOutPath       string
		StandardErrorPath     string
	}
	if _, err := plist.Unmarshal([]byte(out), &agent); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, out)
	}
	want := []string{fakeExe, "report", "--quiet-ok", root}
	if strings.Join(agent.ProgramArguments, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("ProgramArguments %q, want %q", agent.ProgramArguments, want)
	}
	if agent.Label != "org.mbaudit.report" || agent.StartCalendarInterval.Hour != 18 || agent.StartCalendarInterval.Minute != 45 {
		t.Errorf("agent %+v", agent)
	}
	if agent.StandardOutPath != "/Users/ana/Library/Logs/mbaudit/report.log" || !strings.HasPrefix(agent.StandardErrorPath, "/Users/ana/Library/Logs/mbaudit/") {
		t.Errorf("log paths %q %q", agent.StandardOutPath, agent.StandardErrorPath)
	}
	if !strings.Contains(out, "Full Disk Access") || !strings.Contains(stderr, "Full Disk Access") {
		t.Errorf("no Full Disk Access note:\n%s\n%s", out, stderr)
	}
}

// --install writes the files and records them; --uninstall removes exactly
// those, and leaves a file it did not write alone.
func TestScheduleInstallRoundTrip(t *testing.T) {
	home := t.TempDir()
	env := scheduleEnv(t, home)
	agent := filepath.Join(home, "Library", "LaunchAgents", "org.mbaudit.report.plist")
	units := filepath.Join(home, ".config", "systemd", "user")
	mine := filepath.Join(units, "other.service")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mine, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, env, "schedule", "--launchd", "--install", "/srv/b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "launchctl bootstrap") {
		t.Errorf("no next step:\n%s", out)
	}
	if code, _, stderr := run(t, env, "schedule", "--systemd", "--install", "/srv/b"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Installing again overwrites its own files.
	if code, _, stderr := run(t, env, "schedule", "--systemd", "--at", "10:00", "--install", "/srv/b"); code != 0 {
		t.Fatalf("reinstall: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if _, err := plist.Unmarshal(data, &parsed); err != nil {
		t.Errorf("installed plist: %v", err)
	}
	if timer, _ := os.ReadFile(filepath.Join(units, "mbaudit-report.timer")); !bytes.Contains(timer, []byte("OnCalendar=*-*-* 10:00:00")) {
		t.Errorf("timer:\n%s", timer)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "mbaudit", "installed.json")); err != nil {
		t.Error(err)
	}

	code, out, stderr = run(t, env, "schedule", "--uninstall")
	if code != 0 {
		t.Fatalf("uninstall: exit %d: %s", code, stderr)
	}
	for _, p := range []string{agent, filepath.Join(units, "mbaudit-report.service"), filepath.Join(units, "mbaudit-report.timer"),
		filepath.Join(home, ".config", "mbaudit", "installed.json")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file mbaudit did not write was touched: %v", err)
	}
	if !strings.Contains(out, "launchctl bootout") || !strings.Contains(out, "systemctl --user stop") {
		t.Errorf("no next steps:\n%s", out)
	}
	if code, out, _ := run(t, env, "schedule", "--uninstall"); code != 0 || !strings.Contains(out, "nothing to uninstall") {
		t.Errorf("second uninstall: exit %d %q", code, out)
	}
}

// --install refuses to overwrite a file it did not write.
func TestScheduleInstallRefusesForeignFile(t *testing.T) {
	home := t.TempDir()
	env := scheduleEnv(t, home)
	agent := filepath.Join(home, "Library", "LaunchAgents", "org.mbaudit.report.plist")
	if err := os.MkdirAll(filepath.Dir(agent), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, env, "schedule", "--launchd", "--install", "/srv/b")
	if code != 2 || !strings.Contains(stderr, "not written by mbaudit") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if data, _ := os.ReadFile(agent); string(data) != "mine" {
		t.Errorf("overwritten: %q", data)
	}
}

// --cron --install prints the line and never touches the crontab.
func TestScheduleCronInstall(t *testing.T) {
	home := t.TempDir()
	code, out, _ := run(t, scheduleEnv(t, home), "schedule", "--cron", "--install", "/srv/b")
	if code != 0 || !strings.Contains(out, "0 9 * * * /opt/mbaudit/bin/mbaudit report --quiet-ok /srv/b") || !strings.Contains(out, "crontab -e") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("wrote %v", entries)
	}
}

func TestScheduleUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"no kind", []string{"schedule", "/srv/b"}, 2},
		{"two kinds", []string{"schedule", "--cron", "--systemd", "/srv/b"}, 2},
		{"bad at", []string{"schedule", "--cron", "--at", "9am", "/srv/b"}, 2},
		{"no such time", []string{"schedule", "--cron", "--at", "24:00", "/srv/b"}, 2},
		{"no root on linux", []string{"schedule", "--cron"}, 2},
		{"uninstall with a path", []string{"schedule", "--uninstall", "/srv/b"}, 2},
		{"flags after paths", []string{"schedule", "/srv/b", "--cron", "--at", "23:59"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, scheduleEnv(t, t.TempDir()), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
		})
	}
}
