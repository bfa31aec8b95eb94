package backup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

var policyNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func policyBackup(id, udid, name string, st backup.State, last time.Time, size int64) *backup.Backup {
	b := &backup.Backup{
		Path: "/B/" + id, ID: id, UDID: udid, State: st,
		Info:   &backup.InfoPlist{DeviceName: name},
		Status: &backup.StatusPlist{Date: last, SnapshotState: "finished", BackupState: "new"},
		Usage:  backup.Usage{DiskBytes: size},
	}
	return b
}

func findingCodes(fs []backup.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Code))
	}
	return out
}

func TestAssess(t *testing.T) {
	day := 24 * time.Hour
	fresh := policyBackup("AAA", "AAA", "Ana", backup.StateOK, policyNow.Add(-day), 5<<30)
	stale := policyBackup("BBB", "BBB", "Ben", backup.StateOK, policyNow.Add(-30*day), 1<<30)
	big := policyBackup("CCC", "CCC", "Cy", backup.StateOK, policyNow.Add(-day), 20<<30)
	inc := policyBackup("AAA-20260101-101010", "AAA", "Ana", backup.StateIncomplete, time.Time{}, 3<<20)
	inc.Status = nil
	inc.Add(backup.StatusPlistMissing, 1, "Status.plist is missing")
	busy := policyBackup("DDD", "DDD", "Dan", backup.StateBusy, time.Time{}, 1)
	vols := []backup.Volume{{Path: "/B", Dev: 1, FreeBytes: 10 << 30}}
	p := backup.Policy{StaleAfter: 14 * day, MaxSize: 10 << 30}

	h := backup.Assess([]*backup.Backup{fresh, stale, big, inc, busy}, vols, nil, p, policyNow)
	got := map[string][]string{}
	for _, d := range h.Devices {
		got[d.Name] = findingCodes(d.Findings)
	}
	want := map[string]string{"Ana": "status-plist-missing", "Ben": "backup-stale", "Cy": "backup-oversized", "Dan": ""}
	for name, w := range want {
		if g := strings.Join(got[name], ","); g != w {
			t.Errorf("%s: findings %q, want %q", name, g, w)
		}
	}
	if h.Devices[len(h.Devices)-1].Name != "Dan" {
		t.Errorf("devices without problems come last: %v", got)
	}
	// 10 GiB free < the 20 GiB of Cy's newest backup + 128 MiB.
	if len(h.Findings) != 1 || h.Findings[0].Code != backup.LowFreeSpace || !strings.Contains(h.Findings[0].Message, "Cy") {
		t.Errorf("top-level findings %+v", h.Findings)
	}
	if h.Volumes[0].NeededBytes != 20<<30+backup.Headroom {
		t.Errorf("needed %d", h.Volumes[0].NeededBytes)
	}
	for _, d := range h.Devices {
		if d.Name == "Ana" && d.ReclaimableBytes != 3<<20 {
			t.Errorf("Ana reclaimable %d, want the incomplete backup's %d", d.ReclaimableBytes, 3<<20)
		}
	}
	if h.OK() {
		t.Error("OK with problems")
	}

	// --min-free replaces the computed need.
	p.MinFree = 1 << 30
	h = backup.Assess([]*backup.Backup{fresh, stale, big}, vols, nil, p, policyNow)
	if len(h.Findings) != 0 || h.Volumes[0].NeededBytes != 1<<30 {
		t.Errorf("with --min-free 1GiB: %+v %+v", h.Findings, h.Volumes)
	}

	// Healthy, and a busy device alone is not a problem.
	h = backup.Assess([]*backup.Backup{fresh, busy}, []backup.Volume{{Path: "/B", FreeBytes: 100 << 30}}, nil,
		backup.Policy{StaleAfter: 14 * day}, policyNow)
	if !h.OK() {
		t.Errorf("not OK: %+v", h)
	}

	// A device with no complete backup is stale.
	h = backup.Assess([]*backup.Backup{inc}, nil, nil, backup.Policy{StaleAfter: day}, policyNow)
	if c := findingCodes(h.Devices[0].Findings); len(c) != 2 || c[0] != "backup-stale" {
		t.Errorf("findings %v", c)
	}
}

func TestAssessVolumeByDev(t *testing.T) {
	a := policyBackup("AAA", "AAA", "Ana", backup.StateOK, policyNow, 5<<30)
	b := policyBackup("BBB", "BBB", "Ben", backup.StateOK, policyNow, 1<<30)
	vols := []backup.Volume{{Path: "/x", Dev: 7, FreeBytes: 2 << 30}, {Path: "/y", Dev: 8, FreeBytes: 2 << 30}}
	devOf := func(x *backup.Backup) (uint64, bool) {
		if x == a {
			return 7, true
		}
		return 8, true
	}
	h := backup.Assess([]*backup.Backup{a, b}, vols, devOf, backup.Policy{}, policyNow)
	if len(h.Findings) != 1 || h.Findings[0].Examples[0] != "/x" {
		t.Errorf("findings %+v", h.Findings)
	}
}

func TestBytesAge(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := backup.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := backup.Age(30 * 24 * time.Hour); got != "30 days" {
		t.Errorf("Age = %q", got)
	}
}
