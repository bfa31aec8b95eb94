package backup

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Action is what a prune does with one backup. The names are part of the
// command-line contract.
type Action string

// The prune actions.
const (
	ActionKeep    Action = "keep"
	ActionRemove  Action = "remove"
	ActionArchive Action = "archive"
	ActionSkip    Action = "skip"
)

// Rules are prune's retention rules. A zero field is a rule not given.
type Rules struct {
	KeepLast       int           // keep the N newest ok backups of each device
	KeepWithin     time.Duration // keep the ok backups made within this long before now
	KeepWithinText string        // KeepWithin as the user wrote it, for reasons
	Incomplete     bool          // select incomplete backups
	Corrupt        bool          // select corrupt backups
	MaxTotal       int64         // per root: remove the oldest until the total fits
	MaxTotalText   string        // MaxTotal as the user wrote it, for reasons
	AllowLast      bool          // allow removing a device's newest ok or last backup
	Archive        bool          // archive instead of removing
	ArchiveAll     bool          // archive every backup that may be touched (mbaudit archive)
	// BackupProgram names a backup program seen running; when set, nothing
	// is touched.
	BackupProgram string
}

// Given reports whether any rule that decides what goes was given.
func (r Rules) Given() bool {
	return r.keepRules() || r.Incomplete || r.Corrupt || r.MaxTotal > 0 || r.ArchiveAll
}

func (r Rules) keepRules() bool { return r.KeepLast > 0 || r.KeepWithin > 0 }

// The reasons that are not the name of a rule.
const (
	ReasonNewestOK      = "newest ok backup of this device"
	ReasonLastRemaining = "last remaining backup of this device"
	ReasonNotKept       = "no keep rule keeps it"
	ReasonNoRule        = "no rule selects it"
	ReasonBusy          = "busy: being written now"
	ReasonUnreadable    = "unreadable: never touched"
	ReasonSymlink       = "symbolic link: never followed for removal"
)

// PlanRow is the decision about one backup.
type PlanRow struct {
	Backup  *Backup
	Root    string // the folder that holds the backup (where its trash goes)
	Action  Action
	Reasons []string
	// Done is set once the action was carried out; Err says why it could
	// not be (the backup is then left where it was).
	Done bool
	Err  error
}

// Plan is what a prune will do: one row per backup, in device order, newest
// first within a device.
type Plan struct {
	Rows []*PlanRow
	// BytesFreed counts the space of the backups that go, each inode once
	// and only inodes that no staying backup shares through hard links.
	BytesFreed int64
	// Notes say what the rules could not achieve (a --max-total that still
	// does not fit).
	Notes []string

	applied bool // Recount was called
}

// Acting returns the rows whose action removes or archives a backup.
func (p *Plan) Acting() []*PlanRow {
	var out []*PlanRow
	for _, r := range p.Rows {
		if r.Action == ActionRemove || r.Action == ActionArchive {
			out = append(out, r)
		}
	}
	return out
}

// MakePlan decides, for each backup, whether it stays or goes under the
// rules, with the clock now. It is pure: it reads nothing from disk.
//
// Per device (dated copies count as the device's backups): a backup goes
// when a selecting rule (--incomplete, --corrupt, --max-total) selects it,
// or when keep rules were given and none keeps it. Keep rules (which keep ok
// backups only) win over selecting rules. Without AllowLast the newest ok
// backup of a device and a device's last remaining backup always stay.
// Busy, unreadable and symlinked backups are skipped, and so is everything
// while a backup program runs.
func MakePlan(bs []*Backup, r Rules, now time.Time) *Plan {
	sorted := append([]*Backup(nil), bs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.UDID != b.UDID {
			return a.UDID < b.UDID
		}
		return NewerThan(a, b)
	})
	p := &Plan{}
	goes := ActionRemove
	if r.Archive {
		goes = ActionArchive
	}
	// protected rows stay whatever --max-total wants.
	protected := map[*PlanRow]bool{}
	byDevice := map[string][]*PlanRow{}
	var devices []string
	for _, b := range sorted {
		row := &PlanRow{Backup: b, Root: filepath.Dir(filepath.Clean(b.Path))}
		p.Rows = append(p.Rows, row)
		if _, ok := byDevice[b.UDID]; !ok {
			devices = append(devices, b.UDID)
		}
		byDevice[b.UDID] = append(byDevice[b.UDID], row)
	}
	for _, udid := range devices {
		rows := byDevice[udid]
		okSeen := 0
		newestOK := true
		for _, row := range rows {
			b := row.Backup
			if reason := skipReason(b, r); reason != "" {
				row.Action, row.Reasons = ActionSkip, []string{reason}
				protected[row] = true
				continue
			}
			var keep, sel []string
			if b.State == StateOK {
				okSeen++
				if r.KeepLast > 0 && okSeen <= r.KeepLast {
					keep = append(keep, fmt.Sprintf("keep-last %d", r.KeepLast))
				}
				if lb := b.LastBackup(); r.KeepWithin > 0 && !lb.IsZero() && now.Sub(lb) <= r.KeepWithin {
					keep = append(keep, "keep-within "+r.KeepWithinText)
				}
			}
			if r.Incomplete && b.State == StateIncomplete {
				sel = append(sel, "incomplete")
			}
			if r.Corrupt && b.State == StateCorrupt {
				sel = append(sel, "corrupt")
			}
			isNewestOK := b.State == StateOK && newestOK
			if b.State == StateOK {
				newestOK = false
			}
			switch {
			case r.ArchiveAll:
				row.Action, row.Reasons = ActionArchive, []string{"named on the command line"}
				continue
			case len(keep) > 0:
				row.Action, row.Reasons = ActionKeep, keep
				protected[row] = true
			case len(sel) > 0:
				row.Action, row.Reasons = goes, sel
			case r.keepRules():
				row.Action, row.Reasons = goes, []string{ReasonNotKept}
			default:
				row.Action, row.Reasons = ActionKeep, []string{ReasonNoRule}
			}
			if isNewestOK && !r.AllowLast {
				protected[row] = true
				if row.Action == ActionKeep {
					row.Reasons = append(row.Reasons, ReasonNewestOK)
				} else {
					row.Action, row.Reasons = ActionKeep, []string{ReasonNewestOK}
				}
			}
		}
		if !r.AllowLast {
			keepLastRemaining(rows, protected)
		}
	}
	if r.MaxTotal > 0 {
		p.applyMaxTotal(r, goes, byDevice, protected)
	}
	p.BytesFreed = p.bytesFreed()
	return p
}

func skipReason(b *Backup, r Rules) string {
	switch {
	case b.Symlink:
		return ReasonSymlink
	case b.State == StateBusy:
		return ReasonBusy
	case b.State == StateUnreadable:
		return ReasonUnreadable
	case r.BackupProgram != "":
		return "backup program running: " + r.BackupProgram
	}
	return ""
}

// keepLastRemaining keeps a device's newest backup when every one of its
// backups would otherwise go.
func keepLastRemaining(rows []*PlanRow, protected map[*PlanRow]bool) {
	for _, row := range rows {
		if row.Action == ActionKeep || row.Action == ActionSkip {
			return
		}
	}
	row := rows[0]
	row.Action, row.Reasons = ActionKeep, []string{ReasonLastRemaining}
	protected[row] = true
}

// applyMaxTotal removes, in each root, the oldest backups that may go until
// the root's total fits.
func (p *Plan) applyMaxTotal(r Rules, goes Action, byDevice map[string][]*PlanRow, protected map[*PlanRow]bool) {
	byRoot := map[string][]*PlanRow{}
	var roots []string
	for _, row := range p.Rows {
		if _, ok := byRoot[row.Root]; !ok {
			roots = append(roots, row.Root)
		}
		byRoot[row.Root] = append(byRoot[row.Root], row)
	}
	reason := "max-total " + r.MaxTotalText
	for _, root := range roots {
		rows := append([]*PlanRow(nil), byRoot[root]...)
		// Oldest first.
		sort.SliceStable(rows, func(i, j int) bool { return NewerThan(rows[j].Backup, rows[i].Backup) })
		for _, row := range rows {
			if stayingTotal(byRoot[root]) <= r.MaxTotal {
				break
			}
			if row.Action != ActionKeep || protected[row] {
				continue
			}
			if !r.AllowLast && remaining(byDevice[row.Backup.UDID]) <= 1 {
				continue
			}
			row.Action = goes
			row.Reasons = []string{reason}
		}
		if t := stayingTotal(byRoot[root]); t > r.MaxTotal {
			p.Notes = append(p.Notes, fmt.Sprintf("%s: %s still holds %d bytes after every removal the rules allow", reason, root, t))
		}
	}
}

func staying(rows []*PlanRow) []*Backup {
	var out []*Backup
	for _, row := range rows {
		if row.Action == ActionKeep || row.Action == ActionSkip {
			out = append(out, row.Backup)
		}
	}
	return out
}

func stayingTotal(rows []*PlanRow) int64 { return TotalDiskBytes(staying(rows)) }

func remaining(rows []*PlanRow) int { return len(staying(rows)) }

// bytesFreed counts the inodes of the backups that go, each once, minus
// those a staying backup shares.
func (p *Plan) bytesFreed() int64 {
	var gone []*Backup
	for _, row := range p.Acting() {
		gone = append(gone, row.Backup)
	}
	kept := map[Inode]bool{}
	for _, b := range staying(p.Rows) {
		for ino := range b.Usage.Linked {
			kept[ino] = true
		}
	}
	total := TotalDiskBytes(gone)
	counted := map[Inode]bool{}
	for _, b := range gone {
		for ino, n := range b.Usage.Linked {
			if kept[ino] && !counted[ino] {
				total -= n
				counted[ino] = true
			}
		}
	}
	return max(total, 0)
}

// String describes a row for logs: "remove <id> (incomplete)".
func (r *PlanRow) String() string {
	return fmt.Sprintf("%s %s (%s)", r.Action, r.Backup.ID, strings.Join(r.Reasons, ", "))
}

// FreedOn returns, for each volume, the bytes the plan frees on it (each
// root's volume is found by its device number).
func (p *Plan) FreedOn(vols []Volume) []int64 {
	out := make([]int64, len(vols))
	for i, v := range vols {
		sub := &Plan{}
		for _, r := range p.settled().Rows {
			var st unix.Stat_t
			if unix.Stat(r.Root, &st) == nil && uint64(st.Dev) == v.Dev {
				sub.Rows = append(sub.Rows, r)
			}
		}
		out[i] = sub.bytesFreed()
	}
	return out
}

// Recount sets BytesFreed to what the rows that were carried out freed;
// call it after Apply. FreedOn then counts the same.
func (p *Plan) Recount() {
	p.applied = true
	p.BytesFreed = p.settled().bytesFreed()
}

// settled is the plan as carried out: after Apply, a row whose action
// could not be done stays.
func (p *Plan) settled() *Plan {
	if !p.applied {
		return p
	}
	sub := &Plan{}
	for _, r := range p.Rows {
		if (r.Action == ActionRemove || r.Action == ActionArchive) && !r.Done {
			c := *r
			c.Action = ActionKeep
			r = &c
		}
		sub.Rows = append(sub.Rows, r)
	}
	return sub
}
