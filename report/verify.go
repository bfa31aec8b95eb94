package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mbaudit/mbaudit/backup"
)

// VerifyDoc is the JSON document of `mbaudit verify`.
type VerifyDoc struct {
	SchemaVersion int         `json:"schema_version"`
	GeneratedAt   time.Time   `json:"generated_at"`
	Backups       []VerifyRow `json:"backups"`
	Summary       StateCounts `json:"summary"`
}

// VerifyRow is one backup's verification.
type VerifyRow struct {
	Path       string `json:"path"`
	ID         string `json:"id"`
	UDID       string `json:"udid"`
	DeviceName string `json:"device_name"`
	Model      string `json:"model"`
	IOSVersion string `json:"ios_version"`
	State      string `json:"state"`
	Format     string `json:"format"`
	Encrypted  bool   `json:"encrypted"`
	Verified   bool   `json:"verified"`
	Deep       bool   `json:"deep"`
	// Decrypted is set when the password unlocked the backup: its
	// encrypted index was read, and with Deep its blobs decrypted.
	Decrypted    bool         `json:"decrypted"`
	RowsRead     int64        `json:"rows_read"`
	FilesListed  int64        `json:"files_listed"`
	FilesChecked int64        `json:"files_checked"`
	BytesListed  int64        `json:"bytes_listed"`
	BytesRead    int64        `json:"bytes_read"`
	BlobsSeen    int64        `json:"blobs_seen"`
	Findings     []FindingRow `json:"findings"`
}

// FindingRow is one finding on the wire.
type FindingRow struct {
	Code     string   `json:"code"`
	Severity string   `json:"severity"`
	Message  string   `json:"message"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"`
}

// StateCounts counts backups by state.
type StateCounts struct {
	Backups    int `json:"backups"`
	OK         int `json:"ok"`
	Incomplete int `json:"incomplete"`
	Corrupt    int `json:"corrupt"`
	Busy       int `json:"busy"`
	Unreadable int `json:"unreadable"`
}

func (c *StateCounts) add(s backup.State) {
	c.Backups++
	switch s {
	case backup.StateOK:
		c.OK++
	case backup.StateIncomplete:
		c.Incomplete++
	case backup.StateCorrupt:
		c.Corrupt++
	case backup.StateBusy:
		c.Busy++
	case backup.StateUnreadable:
		c.Unreadable++
	}
}

// NewVerify builds the verify document.
func NewVerify(bs []*backup.Backup, now time.Time) VerifyDoc {
	doc := VerifyDoc{SchemaVersion: SchemaVersion, GeneratedAt: now.UTC().Truncate(time.Second), Backups: make([]VerifyRow, 0, len(bs))}
	for _, b := range bs {
		r := VerifyRow{
			Path: b.Path, ID: b.ID, UDID: b.UDID, DeviceName: b.DeviceName(), Model: b.Model(),
			IOSVersion: b.IOSVersion(), State: string(b.State), Format: string(b.Format),
			Encrypted: b.Encrypted, Findings: findingRows(b.Findings),
		}
		if c := b.Check; c != nil {
			r.Verified, r.Deep, r.Decrypted = true, c.Deep, c.Unlocked != nil
			r.RowsRead, r.FilesListed, r.FilesChecked = c.RowsRead, c.FilesListed, c.FilesChecked
			r.BytesListed, r.BytesRead, r.BlobsSeen = c.BytesListed, c.BytesRead, c.BlobsSeen
		}
		doc.Backups = append(doc.Backups, r)
		doc.Summary.add(b.State)
	}
	return doc
}

func findingRows(fs []backup.Finding) []FindingRow {
	out := make([]FindingRow, 0, len(fs))
	for _, f := range fs {
		ex := f.Examples
		if ex == nil {
			ex = []string{}
		}
		out = append(out, FindingRow{Code: string(f.Code), Severity: string(f.Severity), Message: f.Message, Count: f.Count, Examples: ex})
	}
	return out
}

// VerifyCSV writes one line per finding (a backup without findings gets one
// line with empty finding columns).
func VerifyCSV(w io.Writer, doc VerifyDoc) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"path", "id", "udid", "state", "code", "severity", "count", "message", "examples"}); err != nil {
		return err
	}
	for _, r := range doc.Backups {
		if len(r.Findings) == 0 {
			if err := cw.Write([]string{r.Path, r.ID, r.UDID, r.State, "", "", "", "", ""}); err != nil {
				return err
			}
		}
		for _, f := range r.Findings {
			rec := []string{r.Path, r.ID, r.UDID, r.State, f.Code, f.Severity, strconv.Itoa(f.Count), f.Message, strings.Join(f.Examples, ";")}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// VerifyTable writes one block per backup: its state, how much was
// checked, and its findings with counts and examples.
func VerifyTable(w io.Writer, doc VerifyDoc, st Style) error {
	var b strings.Builder
	for i, r := range doc.Backups {
		if i > 0 {
			b.WriteString("\n")
		}
		name := orDash(r.DeviceName)
		fmt.Fprintf(&b, "%s  %s\n", name, r.ID)
		desc := []string{}
		if r.Model != "" {
			desc = append(desc, r.Model)
		}
		if r.IOSVersion != "" {
			desc = append(desc, "iOS "+r.IOSVersion)
		}
		desc = append(desc, r.Format)
		if r.Encrypted {
			desc = append(desc, "encrypted")
		}
		fmt.Fprintf(&b, "  %s, %s\n", st.state(r.State), strings.Join(desc, ", "))
		switch {
		case r.Verified && r.RowsRead == 0 && r.BlobsSeen > 0:
			fmt.Fprintf(&b, "  index encrypted: %s blobs on disk, lengths checked; listed files not checked without the password\n",
				humanize.Comma(r.BlobsSeen))
		case r.Verified:
			line := fmt.Sprintf("  checked %s of %s listed files (%s index rows, %s listed)",
				humanize.Comma(r.FilesChecked), humanize.Comma(r.FilesListed), humanize.Comma(r.RowsRead), size(r.BytesListed))
			switch {
			case r.Deep && r.Decrypted:
				line += fmt.Sprintf("; decrypted %s", size(r.BytesRead))
			case r.Deep:
				line += fmt.Sprintf("; read %s", size(r.BytesRead))
			}
			if r.Decrypted {
				line += "; unlocked with the password"
			}
			b.WriteString(line + "\n")
		case r.State == "busy":
			b.WriteString("  not checked: being written now\n")
		default:
			b.WriteString("  files not checked: the index could not be read\n")
		}
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "  %-7s  %s", f.Severity, f.Code)
			if f.Count > 1 {
				fmt.Fprintf(&b, " (%s)", humanize.Comma(int64(f.Count)))
			}
			fmt.Fprintf(&b, ": %s\n", f.Message)
			for _, e := range f.Examples {
				fmt.Fprintf(&b, "             %s\n", e)
			}
			if f.Count > len(f.Examples) && len(f.Examples) > 0 {
				fmt.Fprintf(&b, "             ... and %s more\n", humanize.Comma(int64(f.Count-len(f.Examples))))
			}
		}
	}
	s := doc.Summary
	if len(doc.Backups) > 0 {
		b.WriteString("\n")
	}
	parts := []string{plural(s.Backups, "backup") + " verified"}
	for _, x := range []struct {
		n    int
		name string
	}{{s.OK, "ok"}, {s.Incomplete, "incomplete"}, {s.Corrupt, "corrupt"}, {s.Busy, "busy"}, {s.Unreadable, "unreadable"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.name))
		}
	}
	b.WriteString(strings.Join(parts, ", ") + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}
