package report

import (
	"bytes"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

// pruneBackups is a root with several devices: Ana's iPhone with three ok
// backups (one a dated copy) and an incomplete one, Ben's iPad with a
// corrupt and an ok backup sharing hard-linked files, Cal's iPhone with
// only a corrupt backup, Dan's iPhone busy beside an old ok copy, an
// unreadable backup and a symbolic link.
func pruneBackups() []*backup.Backup {
	d := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	mk := func(id, name string, st backup.State, date string, gib int64) *backup.Backup {
		udid, ct := backup.SplitID(id)
		b := &backup.Backup{
			Path: "/B/" + id, ID: id, UDID: udid, CopyTime: ct, State: st,
			Info:  &backup.InfoPlist{DeviceName: name},
			Usage: backup.Usage{DiskBytes: gib << 30},
		}
		if date != "" {
			b.Status = &backup.StatusPlist{Date: d(date), SnapshotState: "finished", BackupState: "new"}
		}
		return b
	}
	const ana, ben, cal, dan = "00008110-000A11112222333E", "00008101-0025BDE9D3354D3D", "00008030-000C77778888999E", "00008020-000B44445555666E"
	bens := mk(ben, "Ben's iPad", backup.StateOK, "2026-11-10T08:00:00Z", 20)
	bensOld := mk(ben+"-20260301-080000", "Ben's iPad", backup.StateCorrupt, "2026-03-01T08:00:00Z", 20)
	shared := backup.Inode{Dev: 1, Ino: 42}
	bens.Usage.Linked = map[backup.Inode]int64{shared: 15 << 30}
	bensOld.Usage.Linked = map[backup.Inode]int64{shared: 15 << 30}
	link := mk("00008027-000D00001111222E", "Eve's iPad", backup.StateOK, "2025-01-01T00:00:00Z", 7)
	link.Symlink = true
	return []*backup.Backup{
		mk(ana, "Ana's iPhone", backup.StateOK, "2026-11-18T20:00:00Z", 60),
		mk(ana+"-20261001-100000", "Ana's iPhone", backup.StateOK, "2026-10-01T10:00:00Z", 55),
		mk(ana+"-20250601-100000", "Ana's iPhone", backup.StateOK, "2025-06-01T10:00:00Z", 50),
		mk(ana+"-20261119-230000", "Ana's iPhone", backup.StateIncomplete, "", 3),
		bens, bensOld,
		mk(cal, "Cal's iPhone", backup.StateCorrupt, "2024-02-02T02:00:00Z", 1),
		mk(dan, "Dan's iPhone", backup.StateBusy, "", 9),
		mk(dan+"-20240101-000000", "Dan's iPhone", backup.StateOK, "2024-01-01T00:00:00Z", 8),
		mk("00008120-000E12345678901E", "Fay's iPhone", backup.StateUnreadable, "", 0),
		link,
	}
}

func TestPruneGolden(t *testing.T) {
	cases := []struct {
		name  string
		rules backup.Rules
	}{
		{"keep-last", backup.Rules{KeepLast: 1}},
		{"keep-last-2", backup.Rules{KeepLast: 2}},
		{"keep-within", backup.Rules{KeepWithin: 60 * 24 * time.Hour, KeepWithinText: "60d"}},
		{"incomplete", backup.Rules{Incomplete: true}},
		{"corrupt", backup.Rules{Corrupt: true}},
		{"corrupt-allow-last", backup.Rules{Corrupt: true, AllowLast: true}},
		{"max-total", backup.Rules{MaxTotal: 150 << 30, MaxTotalText: "150GiB"}},
		{"max-total-unreachable", backup.Rules{MaxTotal: 10 << 30, MaxTotalText: "10GiB"}},
		{"keep-within-incomplete-corrupt", backup.Rules{KeepWithin: 60 * 24 * time.Hour, KeepWithinText: "60d", Incomplete: true, Corrupt: true}},
		{"keep-last-max-total", backup.Rules{KeepLast: 2, MaxTotal: 100 << 30, MaxTotalText: "100GiB"}},
		{"allow-last", backup.Rules{KeepLast: 1, Incomplete: true, Corrupt: true, AllowLast: true}},
		{"backup-program", backup.Rules{Incomplete: true, BackupProgram: "idevicebackup2"}},
		{"archive", backup.Rules{Incomplete: true, Corrupt: true, Archive: true}},
	}
	vols := []backup.Volume{{Path: "/B", FreeBytes: 40 << 30, TotalBytes: 500 << 30}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := backup.MakePlan(pruneBackups(), c.rules, clock)
			doc := NewPrune(p, vols, []int64{p.BytesFreed}, true, clock)
			golden(t, "prune-"+c.name+".table", render(t, func(b *bytes.Buffer) error { return PruneTable(b, doc, Style{}) }))
		})
	}
	p := backup.MakePlan(pruneBackups(), backup.Rules{KeepLast: 1, Incomplete: true, Corrupt: true}, clock)
	p.Acting()[0].Done = true
	p.Acting()[1].Err = errString("left alone: changed since the plan: written since the plan")
	p.Recount()
	doc := NewPrune(p, vols, []int64{p.BytesFreed}, false, clock)
	golden(t, "prune.json", render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }))
	golden(t, "prune.csv", render(t, func(b *bytes.Buffer) error { return PruneCSV(b, doc) }))
	golden(t, "prune-applied.table", render(t, func(b *bytes.Buffer) error { return PruneTable(b, doc, Style{}) }))
}

type errString string

func (e errString) Error() string { return string(e) }
