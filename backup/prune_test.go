package backup_test

import (
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

var pruneNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func pb(id string, st backup.State, daysAgo int, gib int64) *backup.Backup {
	udid, ct := backup.SplitID(id)
	b := &backup.Backup{Path: "/B/" + id, ID: id, UDID: udid, CopyTime: ct, State: st, Usage: backup.Usage{DiskBytes: gib << 30}}
	if daysAgo >= 0 {
		b.Status = &backup.StatusPlist{Date: pruneNow.AddDate(0, 0, -daysAgo), SnapshotState: "finished"}
	}
	return b
}

func actions(p *backup.Plan) map[string]backup.Action {
	m := map[string]backup.Action{}
	for _, r := range p.Rows {
		m[r.Backup.ID] = r.Action
	}
	return m
}

func TestPlanRules(t *testing.T) {
	const a = "00008110-000A11112222333E"
	devs := func() []*backup.Backup {
		return []*backup.Backup{
			pb(a, backup.StateOK, 1, 10),
			pb(a+"-20261001-000000", backup.StateOK, 50, 10),
			pb(a+"-20250101-000000", backup.StateIncomplete, 600, 10),
			pb(a+"-20240101-000000", backup.StateCorrupt, 900, 10),
		}
	}
	tests := []struct {
		name  string
		rules backup.Rules
		want  []backup.Action // in the order of devs()
	}{
		{"keep-last 1", backup.Rules{KeepLast: 1}, []backup.Action{"keep", "remove", "remove", "remove"}},
		{"keep-last 5 keeps every ok, removes the rest", backup.Rules{KeepLast: 5}, []backup.Action{"keep", "keep", "remove", "remove"}},
		{"keep-within 30d", backup.Rules{KeepWithin: 30 * 24 * time.Hour, KeepWithinText: "30d"}, []backup.Action{"keep", "remove", "remove", "remove"}},
		{"incomplete only", backup.Rules{Incomplete: true}, []backup.Action{"keep", "keep", "remove", "keep"}},
		{"corrupt only", backup.Rules{Corrupt: true}, []backup.Action{"keep", "keep", "keep", "remove"}},
		{"newest ok stays without allow-last", backup.Rules{KeepWithin: time.Hour, KeepWithinText: "1h"}, []backup.Action{"keep", "remove", "remove", "remove"}},
		{"allow-last lets the newest ok go", backup.Rules{KeepWithin: time.Hour, KeepWithinText: "1h", AllowLast: true}, []backup.Action{"remove", "remove", "remove", "remove"}},
		{"max-total removes oldest first", backup.Rules{MaxTotal: 25 << 30, MaxTotalText: "25GiB"}, []backup.Action{"keep", "keep", "remove", "remove"}},
		{"keep rules win over max-total", backup.Rules{KeepLast: 2, MaxTotal: 1, MaxTotalText: "1B"}, []backup.Action{"keep", "keep", "remove", "remove"}},
		{"archive", backup.Rules{Corrupt: true, Archive: true}, []backup.Action{"keep", "keep", "keep", "archive"}},
		{"backup program running", backup.Rules{Corrupt: true, BackupProgram: "idevicebackup2"}, []backup.Action{"skip", "skip", "skip", "skip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := devs()
			got := actions(backup.MakePlan(bs, tt.rules, pruneNow))
			for i, b := range bs {
				if got[b.ID] != tt.want[i] {
					t.Errorf("%s: %s, want %s", b.ID, got[b.ID], tt.want[i])
				}
			}
		})
	}
}

// A device's last backup stays, whatever its state, without --allow-last.
func TestPlanLastRemaining(t *testing.T) {
	bs := []*backup.Backup{pb("dev1", backup.StateCorrupt, 10, 1), pb("dev1-20200101-000000", backup.StateIncomplete, 2000, 1)}
	p := backup.MakePlan(bs, backup.Rules{Corrupt: true, Incomplete: true}, pruneNow)
	got := actions(p)
	if got["dev1"] != backup.ActionKeep || got["dev1-20200101-000000"] != backup.ActionRemove {
		t.Errorf("got %v", got)
	}
	p = backup.MakePlan(bs, backup.Rules{Corrupt: true, Incomplete: true, AllowLast: true}, pruneNow)
	if n := len(p.Acting()); n != 2 {
		t.Errorf("with allow-last %d go, want 2", n)
	}
}

// bytes_freed counts only inodes not shared with a backup that stays, and
// an inode shared by two backups that go once.
func TestPlanBytesFreedHardLinks(t *testing.T) {
	keep := pb("dev1", backup.StateOK, 1, 10)
	gone1 := pb("dev1-20200101-000000", backup.StateIncomplete, 2000, 10)
	gone2 := pb("dev1-20190101-000000", backup.StateIncomplete, 2400, 10)
	keep.Usage.Linked = map[backup.Inode]int64{{1, 1}: 4 << 30}
	gone1.Usage.Linked = map[backup.Inode]int64{{1, 1}: 4 << 30, {1, 2}: 3 << 30}
	gone2.Usage.Linked = map[backup.Inode]int64{{1, 2}: 3 << 30}
	p := backup.MakePlan([]*backup.Backup{keep, gone1, gone2}, backup.Rules{Incomplete: true}, pruneNow)
	if want := int64(10+10-4-3) << 30; p.BytesFreed != want {
		t.Errorf("bytes freed %d, want %d", p.BytesFreed, want)
	}
}

// The plan is a pure function: the same input gives the same rows.
func TestPlanNoRuleKeepsEverything(t *testing.T) {
	bs := []*backup.Backup{pb("dev1", backup.StateCorrupt, 1, 1)}
	if r := (backup.Rules{AllowLast: true}); r.Given() {
		t.Fatal("allow-last alone counts as a rule")
	}
	if n := len(backup.MakePlan(bs, backup.Rules{}, pruneNow).Acting()); n != 0 {
		t.Errorf("%d acting rows with no rule", n)
	}
}
