package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

// PruneDoc is the `prune` JSON document (dry run or not).
type PruneDoc struct {
	SchemaVersion int          `json:"schema_version"`
	GeneratedAt   time.Time    `json:"generated_at"`
	DryRun        bool         `json:"dry_run"`
	BytesFreed    int64        `json:"bytes_freed"`
	Backups       []PruneRow   `json:"backups"`
	Volumes       []PruneSpace `json:"volumes"`
	Notes         []string     `json:"notes"`
}

// PruneRow is one backup's row of the plan.
type PruneRow struct {
	Path       string     `json:"path"`
	ID         string     `json:"id"`
	UDID       string     `json:"udid"`
	DeviceName string     `json:"device_name"`
	State      string     `json:"state"`
	LastBackup *time.Time `json:"last_backup"`
	SizeBytes  int64      `json:"size_bytes"`
	Action     string     `json:"action"`
	Reasons    []string   `json:"reasons"`
	Done       bool       `json:"done"`
	Error      *string    `json:"error"`
}

// PruneSpace is a volume's free space now and after the prune.
type PruneSpace struct {
	Path           string `json:"path"`
	FreeBytes      int64  `json:"free_bytes"`
	FreeAfterBytes int64  `json:"free_after_bytes"`
}

// NewPrune builds the prune document from a plan (applied or not) and the
// volumes, with freedOn giving the bytes the plan frees on each volume.
func NewPrune(p *backup.Plan, vols []backup.Volume, freedOn []int64, dryRun bool, now time.Time) PruneDoc {
	doc := PruneDoc{
		SchemaVersion: SchemaVersion, GeneratedAt: now.UTC(), DryRun: dryRun, BytesFreed: p.BytesFreed,
		Backups: []PruneRow{}, Volumes: []PruneSpace{}, Notes: nonNil(p.Notes),
	}
	for _, r := range p.Rows {
		b := r.Backup
		row := PruneRow{
			Path: b.Path, ID: b.ID, UDID: b.UDID, DeviceName: b.DeviceName(), State: string(b.State),
			LastBackup: timePtr(b.LastBackup()), SizeBytes: b.Usage.DiskBytes, Action: string(r.Action),
			Reasons: nonNil(r.Reasons), Done: r.Done,
		}
		if r.Err != nil {
			s := r.Err.Error()
			row.Error = &s
		}
		doc.Backups = append(doc.Backups, row)
	}
	for i, v := range vols {
		var freed int64
		if i < len(freedOn) {
			freed = freedOn[i]
		}
		doc.Volumes = append(doc.Volumes, PruneSpace{Path: v.Path, FreeBytes: v.FreeBytes, FreeAfterBytes: v.FreeBytes + freed})
	}
	return doc
}

// PruneCSV writes the plan's rows as CSV with the JSON field names as columns.
func PruneCSV(w io.Writer, doc PruneDoc) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"path", "id", "udid", "device_name", "state", "last_backup", "size_bytes",
		"action", "reasons", "done", "error"}); err != nil {
		return err
	}
	for _, r := range doc.Backups {
		e := ""
		if r.Error != nil {
			e = *r.Error
		}
		if err := cw.Write([]string{r.Path, r.ID, r.UDID, r.DeviceName, r.State, csvTime(r.LastBackup),
			i64(r.SizeBytes), r.Action, strings.Join(r.Reasons, ";"), strconv.FormatBool(r.Done), e}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// PruneTable writes the plan for people: one row per backup, then what it
// frees (or freed).
func PruneTable(w io.Writer, doc PruneDoc, st Style) error {
	header := []string{"DEVICE", "LAST BACKUP", "SIZE", "STATE", "ACTION", "REASONS", "ID"}
	if !doc.DryRun {
		header = append(header, "RESULT")
	}
	t := newTable(w, st, header...)
	n := 0
	for _, r := range doc.Backups {
		if r.Action == string(backup.ActionRemove) || r.Action == string(backup.ActionArchive) {
			n++
		}
		cells := []string{orDash(r.DeviceName), st.date(r.LastBackup), size(r.SizeBytes), st.state(r.State),
			st.action(r.Action), strings.Join(r.Reasons, ", "), r.ID}
		if !doc.DryRun {
			res := ""
			switch {
			case r.Done:
				res = "done"
			case r.Error != nil:
				res = "failed: " + *r.Error
			}
			cells = append(cells, res)
		}
		t.row(cells...)
	}
	if err := t.render(); err != nil {
		return err
	}
	verb := "would free"
	if !doc.DryRun {
		verb = "frees"
	}
	if _, err := fmt.Fprintf(w, "\n%s to remove or archive, %s %s\n", plural(n, "backup"), verb, size(doc.BytesFreed)); err != nil {
		return err
	}
	for _, v := range doc.Volumes {
		if _, err := fmt.Fprintf(w, "%s: %s free, %s after\n", v.Path, size(v.FreeBytes), size(v.FreeAfterBytes)); err != nil {
			return err
		}
	}
	for _, note := range doc.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", note); err != nil {
			return err
		}
	}
	return nil
}

// action colours a prune action on a terminal.
func (st Style) action(a string) string {
	if !st.Color {
		return a
	}
	switch a {
	case "remove":
		return ansiRed + a + ansiReset
	case "archive":
		return ansiYellow + a + ansiReset
	case "keep":
		return ansiGreen + a + ansiReset
	}
	return a
}
