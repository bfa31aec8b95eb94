package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

// ListDoc is the JSON document of `mbaudit list`.
type ListDoc struct {
	SchemaVersion int         `json:"schema_version"`
	GeneratedAt   time.Time   `json:"generated_at"`
	Roots         []string    `json:"roots"`
	Skipped       []string    `json:"skipped"`
	Backups       []ListRow   `json:"backups"`
	Volumes       []VolumeRow `json:"volumes"`
	Summary       ListSummary `json:"summary"`
}

// ListRow is one backup in `mbaudit list`.
type ListRow struct {
	Path          string     `json:"path"`
	ID            string     `json:"id"`
	UDID          string     `json:"udid"`
	DeviceName    string     `json:"device_name"`
	ProductType   string     `json:"product_type"`
	Model         string     `json:"model"`
	IOSVersion    string     `json:"ios_version"`
	LastBackup    *time.Time `json:"last_backup"`
	LastAttempt   *time.Time `json:"last_attempt"`
	SizeBytes     int64      `json:"size_bytes"`
	ApparentBytes int64      `json:"apparent_bytes"`
	FileCount     int64      `json:"file_count"`
	Encrypted     bool       `json:"encrypted"`
	Format        string     `json:"format"`
	State         string     `json:"state"`
	Problems      []string   `json:"problems"`
	// Extensions of the contract.
	DatedCopy     bool   `json:"dated_copy"`
	Symlink       bool   `json:"symlink"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
	SerialNumber  string `json:"serial_number,omitempty"`
	IMEI          string `json:"imei,omitempty"`
	MEID          string `json:"meid,omitempty"`
	ICCID         string `json:"iccid,omitempty"`
	PhoneNumber   string `json:"phone_number,omitempty"`
}

// VolumeRow is a file system holding a root.
type VolumeRow struct {
	Path       string `json:"path"`
	FreeBytes  int64  `json:"free_bytes"`
	TotalBytes int64  `json:"total_bytes"`
}

// ListSummary totals a listing.
type ListSummary struct {
	Backups   int   `json:"backups"`
	Devices   int   `json:"devices"`
	SizeBytes int64 `json:"size_bytes"`
}

// NewList builds the list document. bs is rendered in the order given.
func NewList(bs []*backup.Backup, roots, skipped []string, vols []backup.Volume, now time.Time, p Privacy) ListDoc {
	doc := ListDoc{
		SchemaVersion: SchemaVersion, GeneratedAt: now.UTC().Truncate(time.Second),
		Roots: nonNil(roots), Skipped: nonNil(skipped),
		Backups: make([]ListRow, 0, len(bs)), Volumes: make([]VolumeRow, 0, len(vols)),
	}
	devices := map[string]bool{}
	for _, b := range bs {
		devices[strings.ToUpper(b.UDID)] = true
		doc.Backups = append(doc.Backups, newListRow(b, p))
	}
	for _, v := range vols {
		doc.Volumes = append(doc.Volumes, VolumeRow{Path: v.Path, FreeBytes: v.FreeBytes, TotalBytes: v.TotalBytes})
	}
	doc.Summary = ListSummary{Backups: len(bs), Devices: len(devices), SizeBytes: backup.TotalDiskBytes(bs)}
	return doc
}

func newListRow(b *backup.Backup, p Privacy) ListRow {
	r := ListRow{
		Path: b.Path, ID: b.ID, UDID: b.UDID, DeviceName: b.DeviceName(),
		ProductType: b.ProductType(), Model: b.Model(), IOSVersion: b.IOSVersion(),
		LastBackup: timePtr(b.LastBackup()), LastAttempt: timePtr(b.LastAttempt()),
		SizeBytes: b.Usage.DiskBytes, ApparentBytes: b.Usage.ApparentBytes, FileCount: b.Usage.Files,
		Encrypted: b.Encrypted, Format: string(b.Format), State: string(b.State),
		Problems:  []string{},
		DatedCopy: b.DatedCopy(), Symlink: b.Symlink, SnapshotBytes: b.Usage.SnapshotBytes,
	}
	for _, c := range b.Problems() {
		r.Problems = append(r.Problems, string(c))
	}
	if p.ShowIdentifiers && b.Info != nil {
		r.SerialNumber, r.IMEI, r.MEID, r.ICCID, r.PhoneNumber = b.Info.SerialNumber, b.Info.IMEI, b.Info.MEID, b.Info.ICCID, b.Info.PhoneNumber
	}
	if p.ShowIdentifiers && r.SerialNumber == "" && b.Manifest != nil {
		r.SerialNumber = b.Manifest.Lockdown.SerialNumber
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// JSON writes any document as indented JSON.
func JSON(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// ListCSV writes the list's backups as CSV, with the JSON field names as
// columns (lists joined with ";", null as an empty cell).
func ListCSV(w io.Writer, doc ListDoc) error {
	cw := csv.NewWriter(w)
	cols := []string{"path", "id", "udid", "device_name", "product_type", "model", "ios_version",
		"last_backup", "last_attempt", "size_bytes", "apparent_bytes", "file_count", "encrypted",
		"format", "state", "problems"}
	if err := cw.Write(cols); err != nil {
		return err
	}
	for _, r := range doc.Backups {
		rec := []string{r.Path, r.ID, r.UDID, r.DeviceName, r.ProductType, r.Model, r.IOSVersion,
			csvTime(r.LastBackup), csvTime(r.LastAttempt), i64(r.SizeBytes), i64(r.ApparentBytes),
			i64(r.FileCount), strconv.FormatBool(r.Encrypted), r.Format, r.State, strings.Join(r.Problems, ";")}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// ListTable writes the list as a table for people, then a summary line.
func ListTable(w io.Writer, doc ListDoc, st Style) error {
	t := newTable(w, st, "DEVICE", "MODEL", "IOS", "LAST BACKUP", "SIZE", "ENC", "STATE", "PROBLEMS", "ID")
	for _, r := range doc.Backups {
		name := r.DeviceName
		if name == "" {
			name = "?"
		}
		if r.DatedCopy {
			name += " (copy)"
		}
		if r.Symlink {
			name += " (link)"
		}
		enc := "no"
		if r.Encrypted {
			enc = "yes"
		}
		t.row(name, orDash(r.Model), orDash(r.IOSVersion), st.date(r.LastBackup), size(r.SizeBytes),
			enc, st.state(r.State), orDash(strings.Join(r.Problems, ", ")), r.ID)
	}
	if err := t.render(); err != nil {
		return err
	}
	s := doc.Summary
	line := fmt.Sprintf("%s, %s, %s on disk", plural(s.Backups, "backup"), plural(s.Devices, "device"), size(s.SizeBytes))
	for _, v := range doc.Volumes {
		line += fmt.Sprintf("; %s free of %s on %s", size(v.FreeBytes), size(v.TotalBytes), v.Path)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
