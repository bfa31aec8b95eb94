package backup

import (
	"fmt"
	"sort"
	"time"
)

// State is the one-word verdict on a backup. The names are part of the
// command-line contract: scripts match on them.
type State string

// The states, in the order in which the first that applies wins.
const (
	StateBusy       State = "busy"
	StateUnreadable State = "unreadable"
	StateCorrupt    State = "corrupt"
	StateIncomplete State = "incomplete"
	StateOK         State = "ok"
)

// States lists every state in precedence order.
var States = []State{StateBusy, StateUnreadable, StateCorrupt, StateIncomplete, StateOK}

func (s State) rank() int {
	for i, x := range States {
		if x == s {
			return i
		}
	}
	return len(States)
}

// Worse reports whether s takes precedence over t.
func (s State) Worse(t State) bool { return s.rank() < t.rank() }

// Problem reports whether the state needs a person (busy does not).
func (s State) Problem() bool {
	return s == StateIncomplete || s == StateCorrupt || s == StateUnreadable
}

// Severity grades a finding.
type Severity string

// The severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Format names the kind of index a backup has.
type Format string

// The index formats.
const (
	FormatManifestDB Format = "manifest-db"
	FormatMbdb       Format = "mbdb"
	FormatUnknown    Format = "unknown"
)

// MaxExamples is how many examples a finding carries at most.
const MaxExamples = 10

// Finding is one kind of problem seen in a backup, with how often it was
// seen and a few examples (files as domain/relativePath).
type Finding struct {
	Code     Code
	Severity Severity
	Message  string
	Count    int
	Examples []string
}

// Backup is what mbaudit knows about one backup folder.
type Backup struct {
	Path string // the folder, as found (not resolved)
	ID   string // the folder's name
	UDID string // ID without a dated-copy suffix
	// CopyTime is the time in a dated copy's name (<UDID>-YYYYMMDD-HHMMSS),
	// zero for an ordinary backup folder.
	CopyTime time.Time
	// Symlink is set when the folder is a symbolic link inside its root: it is
	// listed but never followed for removal.
	Symlink bool

	Info     *InfoPlist
	Manifest *ManifestPlist
	Status   *StatusPlist

	Format    Format
	Encrypted bool
	// IndexEncrypted is set when the index itself is encrypted and cannot be
	// read without the password.
	IndexEncrypted bool
	// Unfinished is set when the last attempt did not finish: SnapshotState is
	// not "finished" or a Snapshot/ folder is present.
	Unfinished bool
	// NewestChange is the newest modification time among the folder,
	// Status.plist, Manifest.db, Manifest.plist and Snapshot/.
	NewestChange time.Time

	Usage    Usage
	Findings []Finding
	State    State
	// Check holds what a full verification looked at; nil when the backup
	// was only inspected (list) or could not be verified.
	Check *Verified
}

// DatedCopy reports whether the folder is a dated copy of its device.
func (b *Backup) DatedCopy() bool { return !b.CopyTime.IsZero() }

// DeviceName is the device's name from Info.plist, else from Manifest.plist.
func (b *Backup) DeviceName() string {
	if b.Info != nil && b.Info.DeviceName != "" {
		return b.Info.DeviceName
	}
	if b.Manifest != nil && b.Manifest.Lockdown.DeviceName != "" {
		return b.Manifest.Lockdown.DeviceName
	}
	return ""
}

// DisplayName names the backup for people: its device's name, else its
// folder's name.
func (b *Backup) DisplayName() string {
	if n := b.DeviceName(); n != "" {
		return n
	}
	return b.ID
}

// ProductType is the device's model identifier, e.g. iPhone14,5.
func (b *Backup) ProductType() string {
	if b.Info != nil && b.Info.ProductType != "" {
		return b.Info.ProductType
	}
	if b.Manifest != nil {
		return b.Manifest.Lockdown.ProductType
	}
	return ""
}

// IOSVersion is the device's iOS version. Manifest.plist is preferred: the
// device writes it, while hosts rewrite Info.plist at the start of every
// attempt, finished or not.
func (b *Backup) IOSVersion() string {
	if b.Manifest != nil && b.Manifest.Lockdown.ProductVersion != "" {
		return b.Manifest.Lockdown.ProductVersion
	}
	if b.Info != nil {
		return b.Info.ProductVersion
	}
	return ""
}

// Model is the device's marketing name, or its product type when the table
// does not know it.
func (b *Backup) Model() string {
	if b.Info != nil && b.Info.ProductName != "" {
		return b.Info.ProductName
	}
	return ModelName(b.ProductType())
}

// LastBackup is when the last successful backup finished: Status.plist Date
// when SnapshotState is finished, else Manifest.plist Date, else zero.
func (b *Backup) LastBackup() time.Time {
	if b.Status != nil && b.Status.SnapshotState == "finished" && !b.Status.Date.IsZero() {
		return b.Status.Date
	}
	if b.Manifest != nil {
		return b.Manifest.Date
	}
	return time.Time{}
}

// LastAttempt is Info.plist's Last Backup Date: the start of the last
// attempt, successful or not.
func (b *Backup) LastAttempt() time.Time {
	if b.Info != nil {
		return b.Info.LastBackupDate
	}
	return time.Time{}
}

// Problems lists the codes of the backup's error and warning findings.
func (b *Backup) Problems() []Code {
	var out []Code
	for _, f := range b.Findings {
		if f.Severity != SeverityInfo {
			out = append(out, f.Code)
		}
	}
	return out
}

// Has reports whether the backup has a finding with the code.
func (b *Backup) Has(c Code) bool {
	return b.Finding(c) != nil
}

// Finding returns the backup's finding with the code, or nil.
func (b *Backup) Finding(c Code) *Finding {
	for i := range b.Findings {
		if b.Findings[i].Code == c {
			return &b.Findings[i]
		}
	}
	return nil
}

// Add records count occurrences of a finding, keeping at most MaxExamples
// examples. Findings with the same code are merged.
func (b *Backup) Add(c Code, count int, message string, examples ...string) {
	if f := b.Finding(c); f != nil {
		f.Count += count
		for _, e := range examples {
			if len(f.Examples) < MaxExamples {
				f.Examples = append(f.Examples, e)
			}
		}
		return
	}
	if len(examples) > MaxExamples {
		examples = examples[:MaxExamples]
	}
	b.Findings = append(b.Findings, Finding{
		Code: c, Severity: c.Severity(), Message: message, Count: count,
		Examples: append([]string(nil), examples...),
	})
}

// Addf records one occurrence of a finding with a formatted message.
func (b *Backup) Addf(c Code, format string, args ...any) {
	b.Add(c, 1, fmt.Sprintf(format, args...))
}

// Judge sets the backup's state from its findings, whether it is being
// written, and the clock: busy wins over every other state, then unreadable,
// corrupt, incomplete and ok. It also sorts the findings, errors first.
func (b *Backup) Judge(now time.Time, busyWindow time.Duration) {
	st := StateOK
	for _, f := range b.Findings {
		if s := f.Code.State(); s != "" && s.Worse(st) {
			st = s
		}
	}
	if b.Unfinished && !b.NewestChange.IsZero() && now.Sub(b.NewestChange) < busyWindow {
		st = StateBusy
	}
	b.State = st
	sort.SliceStable(b.Findings, func(i, j int) bool {
		return b.Findings[i].Severity.rank() < b.Findings[j].Severity.rank()
	})
}

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// Usage is the space a backup takes.
type Usage struct {
	DiskBytes     int64 // allocated blocks, each inode once, as du counts
	ApparentBytes int64 // sum of file lengths
	Files         int64 // regular files
	SnapshotBytes int64 // allocated bytes under Snapshot/
	// OrphanBytes is the length of blobs the index does not list (known
	// after verify).
	OrphanBytes int64
	// Linked holds the inodes with more than one link and their allocated
	// bytes, so that totals across backups count each once.
	Linked map[Inode]int64
}

// Inode identifies a file on a volume.
type Inode struct{ Dev, Ino uint64 }
