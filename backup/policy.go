package backup

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Policy holds the thresholds of `report` (and prune): zero turns a check
// off, except MinFree, where zero means "computed from the backups".
type Policy struct {
	// StaleAfter is how old a device's newest ok backup may be.
	StaleAfter time.Duration
	// MaxSize is the largest a backup may be on disk.
	MaxSize int64
	// MinFree, when set, replaces the computed need of a volume: the
	// newest backup of its largest device plus Headroom.
	MinFree int64
}

// Headroom is what a volume needs beyond the size of the next backup.
const Headroom = 128 << 20

// DefaultStaleAfter is the contract's default for --stale-after.
const DefaultStaleAfter = 14 * 24 * time.Hour

// DeviceHealth is one device as report sees it.
type DeviceHealth struct {
	UDID  string
	Name  string // the device name, else the UDID
	Model string
	// Backups are the device's backups, newest first.
	Backups []*Backup
	// NewestOK is the newest backup in state ok, or nil.
	NewestOK *Backup
	// SizeBytes is the space its backups take, shared inodes once.
	SizeBytes int64
	// ReclaimableBytes is what could go without losing a good backup.
	ReclaimableBytes int64
	// Findings are the policy findings of the device (backup-stale,
	// backup-oversized) followed by the error findings of its backups that
	// are incomplete, corrupt or unreadable, each message led by the
	// backup's id.
	Findings []Finding
	// Volume is the index in Health.Volumes of the volume that holds the
	// device's newest backup, or -1.
	Volume int
}

// Problem reports whether the device needs a person.
func (d *DeviceHealth) Problem() bool { return len(d.Findings) > 0 }

// VolumeHealth is a volume with the free space the next backups need.
type VolumeHealth struct {
	Volume
	NeededBytes int64
	// Device is the name of the device whose next backup sets the need
	// ("" when --min-free set it or no device is on the volume).
	Device string
}

// Health is the result of the policy checks.
type Health struct {
	Devices []DeviceHealth // problems first, then by name
	Volumes []VolumeHealth
	// Findings are those tied to no single device: low-free-space, one per
	// volume.
	Findings []Finding
}

// OK reports whether nothing needs a person.
func (h *Health) OK() bool {
	if len(h.Findings) > 0 {
		return false
	}
	for i := range h.Devices {
		if h.Devices[i].Problem() {
			return false
		}
	}
	return true
}

// Assess applies the policy to measured and judged backups. devOf tells the
// volume (Volume.Dev) a backup is on; with nil, or when it does not know,
// a backup is taken to be on the first volume whose Path holds it, else on
// the only volume. It reads no files: the clock and the free space are
// parameters.
func Assess(bs []*Backup, vols []Volume, devOf func(*Backup) (uint64, bool), p Policy, now time.Time) *Health {
	h := &Health{}
	free := WouldFree(bs)
	freeOf := map[*Backup]int64{}
	for i, b := range bs {
		freeOf[b] = free[i]
	}

	byUDID := map[string]*DeviceHealth{}
	var order []string
	for _, b := range bs {
		key := strings.ToUpper(b.UDID)
		d := byUDID[key]
		if d == nil {
			d = &DeviceHealth{UDID: b.UDID, Volume: -1}
			byUDID[key] = d
			order = append(order, key)
		}
		d.Backups = append(d.Backups, b)
	}

	for _, key := range order {
		d := byUDID[key]
		sort.SliceStable(d.Backups, func(i, j int) bool { return NewerThan(d.Backups[i], d.Backups[j]) })
		for _, b := range d.Backups {
			if d.Name == "" {
				d.Name = b.DeviceName()
			}
			if d.Model == "" {
				d.Model = b.Model()
			}
			if d.NewestOK == nil && b.State == StateOK {
				d.NewestOK = b
			}
			d.ReclaimableBytes += Reclaimable(b, freeOf[b])
		}
		if d.Name == "" {
			d.Name = d.UDID
		}
		d.SizeBytes = TotalDiskBytes(d.Backups)
		d.Findings = deviceFindings(d, p, now)
		h.Devices = append(h.Devices, *d)
	}
	sort.SliceStable(h.Devices, func(i, j int) bool {
		a, b := &h.Devices[i], &h.Devices[j]
		if a.Problem() != b.Problem() {
			return a.Problem()
		}
		if x, y := strings.ToLower(a.Name), strings.ToLower(b.Name); x != y {
			return x < y
		}
		return a.UDID < b.UDID
	})

	h.Volumes = make([]VolumeHealth, len(vols))
	for i, v := range vols {
		h.Volumes[i] = VolumeHealth{Volume: v}
	}
	for i := range h.Devices {
		d := &h.Devices[i]
		next := d.NewestOK
		if next == nil {
			next = d.Backups[0]
		}
		d.Volume = volumeIndex(next, vols, devOf)
		if d.Volume < 0 {
			continue
		}
		v := &h.Volumes[d.Volume]
		if need := next.Usage.DiskBytes + Headroom; need > v.NeededBytes {
			v.NeededBytes, v.Device = need, d.Name
		}
	}
	for i := range h.Volumes {
		v := &h.Volumes[i]
		if p.MinFree > 0 {
			v.NeededBytes, v.Device = p.MinFree, ""
		}
		if v.NeededBytes == 0 || v.FreeBytes >= v.NeededBytes {
			continue
		}
		msg := fmt.Sprintf("only %s free on %s, under the %s set by --min-free", Bytes(v.FreeBytes), v.Path, Bytes(v.NeededBytes))
		if v.Device != "" {
			msg = fmt.Sprintf("only %s free on %s: the next backup of %s needs about %s and will not fit",
				Bytes(v.FreeBytes), v.Path, v.Device, Bytes(v.NeededBytes))
		}
		h.Findings = append(h.Findings, Finding{
			Code: LowFreeSpace, Severity: LowFreeSpace.Severity(), Message: msg, Count: 1, Examples: []string{v.Path},
		})
	}
	return h
}

func deviceFindings(d *DeviceHealth, p Policy, now time.Time) []Finding {
	var out []Finding
	add := func(c Code, msg string, examples ...string) {
		out = append(out, Finding{Code: c, Severity: c.Severity(), Message: msg, Count: 1, Examples: append([]string{}, examples...)})
	}
	if p.StaleAfter > 0 {
		switch {
		case d.NewestOK != nil:
			last := d.NewestOK.LastBackup()
			if age := now.Sub(last); last.IsZero() || age > p.StaleAfter {
				add(BackupStale, fmt.Sprintf("the newest complete backup is %s old (limit %s)", Age(age), Age(p.StaleAfter)), d.NewestOK.ID)
			}
		case !allBusy(d.Backups):
			add(BackupStale, "there is no complete backup of this device", d.Backups[0].ID)
		}
	}
	if p.MaxSize > 0 {
		for _, b := range d.Backups {
			if b.Usage.DiskBytes > p.MaxSize {
				add(BackupOversized, fmt.Sprintf("backup %s takes %s, over the %s limit", b.ID, Bytes(b.Usage.DiskBytes), Bytes(p.MaxSize)), b.ID)
			}
		}
	}
	for _, b := range d.Backups {
		if !b.State.Problem() {
			continue
		}
		for _, f := range b.Findings {
			if f.Severity != SeverityError {
				continue
			}
			f.Message = fmt.Sprintf("backup %s is %s: %s", b.ID, b.State, f.Message)
			f.Examples = append([]string{}, f.Examples...)
			out = append(out, f)
		}
	}
	return out
}

func allBusy(bs []*Backup) bool {
	for _, b := range bs {
		if b.State != StateBusy {
			return false
		}
	}
	return true
}

func volumeIndex(b *Backup, vols []Volume, devOf func(*Backup) (uint64, bool)) int {
	if devOf != nil {
		if dev, ok := devOf(b); ok {
			for i, v := range vols {
				if v.Dev == dev {
					return i
				}
			}
		}
	}
	for i, v := range vols {
		if v.Path != "" && (b.Path == v.Path || strings.HasPrefix(b.Path, strings.TrimSuffix(v.Path, "/")+"/")) {
			return i
		}
	}
	if len(vols) == 1 {
		return 0
	}
	return -1
}

// Advice says in plain words what to do about a finding.
func Advice(c Code) string {
	switch c {
	case BackupStale:
		return "connect the device and back it up (Finder, iTunes or idevicebackup2); if it was retired, remove or archive its backups"
	case BackupOversized:
		return "see what takes the space with `mbaudit usage`, then remove old dated copies or large app data"
	case LowFreeSpace:
		return "free space on that disk or move the backup folder to a larger one, before the next backup runs"
	case SnapshotDirPresent, SnapshotUnfinished, BackupStateNotNew, FileMissing, ManifestDBMissing,
		InfoPlistMissing, ManifestPlistMissing, StatusPlistMissing:
		return "run a new backup of the device; once it is ok, remove this incomplete one (mbaudit prune --incomplete)"
	case BackupUnreadable, FileUnreadable:
		return "check permissions (on macOS give Full Disk Access to the program that runs mbaudit) and the disk's health"
	}
	if c.State() == StateCorrupt {
		return "do not rely on this backup: run a new backup of the device, then remove the corrupt one"
	}
	return "run `mbaudit verify` on the backup for details"
}

// Bytes writes a byte count in binary units (KiB, MiB, GiB) with one
// decimal, for messages.
func Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// Age writes a duration in whole days (or hours under two days), for
// messages.
func Age(d time.Duration) string {
	if d < 48*time.Hour {
		h := int64(d / time.Hour)
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d days", int64(d/(24*time.Hour)))
}

// DevOf tells the volume a backup folder is on, for Assess.
func DevOf(b *Backup) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(b.Path, &st); err != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}
