package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mbaudit/mbaudit/backup"
)

// healthSample has one finding of each kind: a stale device, an oversized
// backup, an incomplete backup and a volume short of space.
func healthSample() *backup.Health {
	d := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	mk := func(id, udid, name, product string, st backup.State, last string, size int64) *backup.Backup {
		b := &backup.Backup{
			Path: "/B/" + id, ID: id, UDID: udid, State: st, Format: backup.FormatManifestDB,
			Info:  &backup.InfoPlist{DeviceName: name, ProductType: product},
			Usage: backup.Usage{DiskBytes: size},
		}
		if last != "" {
			b.Status = &backup.StatusPlist{Date: d(last), SnapshotState: "finished", BackupState: "new"}
		}
		return b
	}
	ana := mk("00008110-000A11112222333E", "00008110-000A11112222333E", "Ana's iPhone", "iPhone14,5", backup.StateOK, "2026-11-19T20:00:00Z", 2<<30)
	ben := mk("00008101-0025BDE9D3354D3D", "00008101-0025BDE9D3354D3D", "Ben's iPad | work\nhome", "iPad13,1", backup.StateOK, "2026-10-01T08:30:00Z", 1<<30)
	cy := mk("00008030-000C77778888999E", "00008030-000C77778888999E", `Cy's "big" iPhone`, "iPhone16,2", backup.StateOK, "2026-11-20T06:00:00Z", 20<<30)
	dan := mk("00008020-000B44445555666E", "00008020-000B44445555666E", "Dan's iPhone", "iPhone8,1", backup.StateOK, "2026-11-18T21:00:00Z", 3<<30)
	inc := mk("00008020-000B44445555666E-20260101-101010", "00008020-000B44445555666E", "Dan's iPhone", "iPhone8,1", backup.StateIncomplete, "", 300<<20)
	inc.Usage.SnapshotBytes = 100 << 20
	inc.Add(backup.StatusPlistMissing, 1, "Status.plist is missing")
	vols := []backup.Volume{{Path: "/B", Dev: 1, FreeBytes: 10 << 30, TotalBytes: 500 << 30}}
	p := backup.Policy{StaleAfter: 14 * 24 * time.Hour, MaxSize: 10 << 30}
	return backup.Assess([]*backup.Backup{ana, ben, cy, dan, inc}, vols, nil, p, clock)
}

func TestHealthGolden(t *testing.T) {
	doc := NewHealth(healthSample(), clock, false)
	if doc.OK {
		t.Error("ok with problems")
	}
	golden(t, "health.txt", render(t, func(b *bytes.Buffer) error { return HealthText(b, doc, Style{}) }))
	golden(t, "health.json", render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }))
	golden(t, "health.md", render(t, func(b *bytes.Buffer) error { return HealthMarkdown(b, doc) }))
	golden(t, "health.prom", render(t, func(b *bytes.Buffer) error { return HealthProm(b, doc) }))
	mac := NewHealth(healthSample(), clock, true)
	golden(t, "health-darwin.txt", render(t, func(b *bytes.Buffer) error { return HealthText(b, mac, Style{}) }))

	// One finding of each kind.
	seen := map[string]int{}
	for _, d := range doc.Devices {
		for _, f := range d.Findings {
			seen[f.Code]++
		}
	}
	for _, f := range doc.Findings {
		seen[f.Code]++
	}
	want := map[string]int{"backup-stale": 1, "backup-oversized": 1, "status-plist-missing": 1, "low-free-space": 1}
	for c, n := range want {
		if seen[c] != n {
			t.Errorf("%s: %d findings, want %d (all: %v)", c, seen[c], n, seen)
		}
	}
}

// Markdown cells never carry a raw "|" or a line break.
func TestHealthMarkdownCells(t *testing.T) {
	out := render(t, func(b *bytes.Buffer) error { return HealthMarkdown(b, NewHealth(healthSample(), clock, false)) })
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.ReplaceAll(line, `\|`, ""), "|")
		if len(cells) != 9 && len(cells) != 5 {
			t.Errorf("row with %d cells: %q", len(cells)-2, line)
		}
	}
}

// The prom output passes Prometheus's own text-format parser, with every
// label value as it was.
func TestHealthPromParses(t *testing.T) {
	out := render(t, func(b *bytes.Buffer) error { return HealthProm(b, NewHealth(healthSample(), clock, false)) })
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	for _, name := range []string{"mbaudit_backup_size_bytes", "mbaudit_backup_last_success_timestamp_seconds",
		"mbaudit_backup_state", "mbaudit_volume_free_bytes", "mbaudit_device_reclaimable_bytes", "mbaudit_report_success"} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
	devices := map[string]bool{}
	states := 0
	for _, m := range fams["mbaudit_backup_state"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "device" {
				devices[l.GetValue()] = true
			}
		}
		states += int(m.GetGauge().GetValue())
	}
	if !devices["Ben's iPad | work\nhome"] || !devices[`Cy's "big" iPhone`] {
		t.Errorf("label values not kept: %v", devices)
	}
	if states != 5 {
		t.Errorf("%d backups with state 1, want 5 (one each)", states)
	}
	if v := fams["mbaudit_report_success"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("mbaudit_report_success %v", v)
	}
}
