package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mbaudit/mbaudit/backup"
)

// UsageDoc is the JSON document of `mbaudit usage`. For backup folders it
// fills Backups (where each one's space goes); for roots it fills Devices
// (what removing each backup would free) and Summary. The other list is
// empty.
type UsageDoc struct {
	SchemaVersion int           `json:"schema_version"`
	GeneratedAt   time.Time     `json:"generated_at"`
	By            string        `json:"by"`
	Backups       []UsageBackup `json:"backups"`
	Devices       []UsageDevice `json:"devices"`
	// Extension of the contract: totals of the devices view.
	Summary *UsageSummary `json:"summary,omitempty"`
}

// UsageBackup is one backup's space by app, domain or category.
type UsageBackup struct {
	Path   string       `json:"path"`
	ID     string       `json:"id"`
	Groups []UsageGroup `json:"groups"`
	Top    []UsageFile  `json:"top"`
	// Extensions of the contract.
	Files     int64  `json:"files"`
	Bytes     int64  `json:"bytes"`
	DiskBytes int64  `json:"disk_bytes"`
	Note      string `json:"note,omitempty"` // why the index was not read
}

// UsageGroup is one app, domain or category.
type UsageGroup struct {
	Key       string `json:"key"`
	Name      string `json:"name"`
	Files     int64  `json:"files"`
	Bytes     int64  `json:"bytes"`
	DiskBytes int64  `json:"disk_bytes"`
}

// UsageFile is one of the largest files.
type UsageFile struct {
	Domain       string `json:"domain"`
	RelativePath string `json:"relative_path"`
	Bytes        int64  `json:"bytes"`
}

// UsageDevice is one device's backups and what could go.
type UsageDevice struct {
	UDID             string             `json:"udid"`
	Backups          []UsageDeviceEntry `json:"backups"`
	ReclaimableBytes int64              `json:"reclaimable_bytes"`
	// Extensions of the contract.
	DeviceName string `json:"device_name"`
	SizeBytes  int64  `json:"size_bytes"` // files shared by hard link counted once
}

// UsageDeviceEntry is one backup (or dated copy) of a device.
type UsageDeviceEntry struct {
	ID             string `json:"id"`
	SizeBytes      int64  `json:"size_bytes"`
	WouldFreeBytes int64  `json:"would_free_bytes"`
	// Extensions of the contract.
	Path             string     `json:"path"`
	State            string     `json:"state"`
	DatedCopy        bool       `json:"dated_copy"`
	LastBackup       *time.Time `json:"last_backup"`
	SnapshotBytes    int64      `json:"snapshot_bytes"`
	ReclaimableBytes int64      `json:"reclaimable_bytes"`
}

// UsageSummary totals the devices view.
type UsageSummary struct {
	Backups          int   `json:"backups"`
	Devices          int   `json:"devices"`
	SizeBytes        int64 `json:"size_bytes"` // each inode once across all backups
	ReclaimableBytes int64 `json:"reclaimable_bytes"`
}

// NewUsageBackups builds the document of the single-backup view: spaces[i]
// is where bs[i]'s space goes.
func NewUsageBackups(bs []*backup.Backup, spaces []*backup.Space, by backup.GroupBy, now time.Time) UsageDoc {
	doc := newUsageDoc(by, now)
	for i, b := range bs {
		s := spaces[i]
		ub := UsageBackup{Path: b.Path, ID: b.ID, Groups: []UsageGroup{}, Top: []UsageFile{},
			Files: s.Files, Bytes: s.Bytes, DiskBytes: s.DiskBytes, Note: s.Unread}
		for _, g := range s.Groups {
			ub.Groups = append(ub.Groups, UsageGroup{Key: g.Key, Name: g.Name, Files: g.Files, Bytes: g.Bytes, DiskBytes: g.DiskBytes})
		}
		for _, f := range s.Top {
			ub.Top = append(ub.Top, UsageFile{Domain: f.Domain, RelativePath: f.RelativePath, Bytes: f.Bytes})
		}
		doc.Backups = append(doc.Backups, ub)
	}
	return doc
}

// NewUsageDevices builds the document of the roots view from measured
// backups (backup.Measure): per device, newest backup first.
func NewUsageDevices(bs []*backup.Backup, by backup.GroupBy, now time.Time) UsageDoc {
	doc := newUsageDoc(by, now)
	free := backup.WouldFree(bs)
	type dev struct {
		udid string
		bs   []int
	}
	var devs []*dev
	byUDID := map[string]*dev{}
	for i, b := range bs {
		k := strings.ToUpper(b.UDID)
		d := byUDID[k]
		if d == nil {
			d = &dev{udid: b.UDID}
			byUDID[k] = d
			devs = append(devs, d)
		}
		d.bs = append(d.bs, i)
	}
	sort.SliceStable(devs, func(i, j int) bool { return strings.ToUpper(devs[i].udid) < strings.ToUpper(devs[j].udid) })
	sum := UsageSummary{Backups: len(bs), Devices: len(devs), SizeBytes: backup.TotalDiskBytes(bs)}
	for _, d := range devs {
		sort.SliceStable(d.bs, func(i, j int) bool { return backup.NewerThan(bs[d.bs[i]], bs[d.bs[j]]) })
		ud := UsageDevice{UDID: d.udid, Backups: []UsageDeviceEntry{}}
		var mine []*backup.Backup
		for _, i := range d.bs {
			b := bs[i]
			mine = append(mine, b)
			if ud.DeviceName == "" {
				ud.DeviceName = b.DeviceName()
			}
			rec := backup.Reclaimable(b, free[i])
			ud.ReclaimableBytes += rec
			ud.Backups = append(ud.Backups, UsageDeviceEntry{
				ID: b.ID, SizeBytes: b.Usage.DiskBytes, WouldFreeBytes: free[i],
				Path: b.Path, State: string(b.State), DatedCopy: b.DatedCopy(), LastBackup: timePtr(b.LastBackup()),
				SnapshotBytes: b.Usage.SnapshotBytes, ReclaimableBytes: rec,
			})
		}
		ud.SizeBytes = backup.TotalDiskBytes(mine)
		sum.ReclaimableBytes += ud.ReclaimableBytes
		doc.Devices = append(doc.Devices, ud)
	}
	doc.Summary = &sum
	return doc
}

func newUsageDoc(by backup.GroupBy, now time.Time) UsageDoc {
	return UsageDoc{
		SchemaVersion: SchemaVersion, GeneratedAt: now.UTC().Truncate(time.Second), By: string(by),
		Backups: []UsageBackup{}, Devices: []UsageDevice{},
	}
}

// UsageCSV writes the rows the document lists, with the JSON field names as
// columns: the groups of each backup (or, with top, its largest files), or
// the backups of each device.
func UsageCSV(w io.Writer, doc UsageDoc, top bool) error {
	cw := csv.NewWriter(w)
	var rows [][]string
	switch {
	case doc.Summary != nil:
		rows = append(rows, []string{"udid", "device_name", "id", "path", "state", "dated_copy", "size_bytes",
			"would_free_bytes", "snapshot_bytes", "reclaimable_bytes"})
		for _, d := range doc.Devices {
			for _, b := range d.Backups {
				rows = append(rows, []string{d.UDID, d.DeviceName, b.ID, b.Path, b.State, strconv.FormatBool(b.DatedCopy),
					i64(b.SizeBytes), i64(b.WouldFreeBytes), i64(b.SnapshotBytes), i64(b.ReclaimableBytes)})
			}
		}
	case top:
		rows = append(rows, []string{"id", "domain", "relative_path", "bytes"})
		for _, b := range doc.Backups {
			for _, f := range b.Top {
				rows = append(rows, []string{b.ID, f.Domain, f.RelativePath, i64(f.Bytes)})
			}
		}
	default:
		rows = append(rows, []string{"id", "key", "name", "files", "bytes", "disk_bytes"})
		for _, b := range doc.Backups {
			for _, g := range b.Groups {
				rows = append(rows, []string{b.ID, g.Key, g.Name, i64(g.Files), i64(g.Bytes), i64(g.DiskBytes)})
			}
		}
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

// UsageTable writes the document for people. When barWidth is more than 0
// (stdout is a terminal that many columns wide) each row gets a bar of
// Unicode blocks scaled to the largest row; otherwise the text is plain.
func UsageTable(w io.Writer, doc UsageDoc, st Style, barWidth int) error {
	if doc.Summary != nil {
		return usageDevicesTable(w, doc, st, barWidth)
	}
	for i, b := range doc.Backups {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s (%s), by %s\n", b.ID, b.Path, doc.By); err != nil {
			return err
		}
		if b.Note != "" {
			if _, err := fmt.Fprintf(w, "index not read: %s\n", b.Note); err != nil {
				return err
			}
			continue
		}
		// The key says which bundle ID an app's name stands for; when no
		// name differs from its key, one column is enough.
		showKey := false
		for _, g := range b.Groups {
			showKey = showKey || g.Name != g.Key
		}
		header := []string{"NAME", "KEY", "FILES", "SIZE", "ON DISK"}
		if !showKey {
			header = []string{"NAME", "FILES", "SIZE", "ON DISK"}
		}
		t := newTable(nil, st, header...)
		var vals []int64
		for _, g := range b.Groups {
			cells := []string{g.Name, g.Key, i64(g.Files), size(g.Bytes), size(g.DiskBytes)}
			if !showKey {
				cells = append(cells[:1], cells[2:]...)
			}
			t.row(cells...)
			vals = append(vals, g.Bytes)
		}
		if err := renderWithBars(w, t, vals, barWidth); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s, %s listed, %s on disk\n", plural(int(b.Files), "file"), size(b.Bytes), size(b.DiskBytes)); err != nil {
			return err
		}
		if len(b.Top) > 0 {
			if _, err := fmt.Fprintf(w, "\nlargest files:\n"); err != nil {
				return err
			}
			t := newTable(nil, st, "SIZE", "DOMAIN", "PATH")
			vals = vals[:0]
			for _, f := range b.Top {
				t.row(size(f.Bytes), f.Domain, f.RelativePath)
				vals = append(vals, f.Bytes)
			}
			if err := renderWithBars(w, t, nil, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

func usageDevicesTable(w io.Writer, doc UsageDoc, st Style, barWidth int) error {
	t := newTable(nil, st, "DEVICE", "ID", "STATE", "SIZE", "WOULD FREE", "RECLAIMABLE")
	var vals []int64
	for _, d := range doc.Devices {
		name := d.DeviceName
		if name == "" {
			name = "?"
		}
		for _, b := range d.Backups {
			n := name
			if b.DatedCopy {
				n += " (copy)"
			}
			t.row(n, b.ID, st.state(b.State), size(b.SizeBytes), size(b.WouldFreeBytes), size(b.ReclaimableBytes))
			vals = append(vals, b.SizeBytes)
		}
	}
	if err := renderWithBars(w, t, vals, barWidth); err != nil {
		return err
	}
	s := doc.Summary
	_, err := fmt.Fprintf(w, "%s, %s, %s on disk (files shared by hard link counted once), %s reclaimable\n",
		plural(s.Backups, "backup"), plural(s.Devices, "device"), size(s.SizeBytes), size(s.ReclaimableBytes))
	return err
}

// renderWithBars renders the table and, when width > 0, appends to each row
// a bar for vals[i], filling what is left of the width.
func renderWithBars(w io.Writer, t *table, vals []int64, width int) error {
	var buf bytes.Buffer
	t.w = &buf
	if err := t.render(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	if width <= 0 || len(vals) == 0 {
		_, err := io.WriteString(w, buf.String())
		return err
	}
	widest := 0
	for _, l := range lines {
		widest = max(widest, visibleLen(strings.TrimSuffix(l, "\n")))
	}
	cells := max(width-widest-3, 10)
	var top int64
	for _, v := range vals {
		top = max(top, v)
	}
	for i, l := range lines {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		if i >= 1 && i-1 < len(vals) {
			if b := Bar(vals[i-1], top, cells); b != "" {
				l += strings.Repeat(" ", widest-visibleLen(l)+2) + b
			}
		}
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// visibleLen counts the characters of a line a terminal shows, leaving out
// colour escapes.
func visibleLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			if j := strings.IndexByte(s[i:], 'm'); j >= 0 {
				i += j + 1
				continue
			}
		}
		_, sz := utf8.DecodeRuneInString(s[i:])
		i += sz
		n++
	}
	return n
}

// eighths are the partial blocks, from one eighth to seven.
var eighths = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

// Bar draws v out of top as at most cells full blocks, with the last one
// partial to an eighth of a cell. A value above 0 shows at least an eighth.
func Bar(v, top int64, cells int) string {
	if v <= 0 || top <= 0 || cells <= 0 {
		return ""
	}
	n := int(float64(v) / float64(top) * float64(cells*8))
	n = max(n, 1)
	return strings.Repeat("█", n/8) + eighths[n%8]
}
