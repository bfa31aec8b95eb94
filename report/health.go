package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

// HealthDoc is the JSON document of `mbaudit report`.
type HealthDoc struct {
	SchemaVersion int            `json:"schema_version"`
	GeneratedAt   time.Time      `json:"generated_at"`
	OK            bool           `json:"ok"`
	Devices       []HealthDevice `json:"devices"`
	Volumes       []HealthVolume `json:"volumes"`
	Findings      []AdviceRow    `json:"findings"`
	// Extension of the contract: say on macOS that purgeable space is not
	// counted as free.
	Notes []string `json:"notes"`
}

// HealthDevice is one device in `mbaudit report`.
type HealthDevice struct {
	UDID             string      `json:"udid"`
	DeviceName       string      `json:"device_name"`
	Model            string      `json:"model"`
	NewestOK         *string     `json:"newest_ok"`
	LastBackup       *time.Time  `json:"last_backup"`
	Backups          []string    `json:"backups"`
	SizeBytes        int64       `json:"size_bytes"`
	ReclaimableBytes int64       `json:"reclaimable_bytes"`
	Findings         []AdviceRow `json:"findings"`
	// Extensions of the contract.
	OK            bool           `json:"ok"`
	BackupDetails []HealthBackup `json:"backup_details"`
}

// HealthBackup is one backup of a device, for metrics and scripts.
type HealthBackup struct {
	ID         string     `json:"id"`
	Path       string     `json:"path"`
	State      string     `json:"state"`
	LastBackup *time.Time `json:"last_backup"`
	SizeBytes  int64      `json:"size_bytes"`
}

// HealthVolume is a volume with the free space the next backup needs.
type HealthVolume struct {
	Path        string `json:"path"`
	FreeBytes   int64  `json:"free_bytes"`
	NeededBytes int64  `json:"needed_bytes"`
	// Extension of the contract.
	TotalBytes int64 `json:"total_bytes"`
}

// AdviceRow is a finding with what to do about it.
type AdviceRow struct {
	FindingRow
	// Extension of the contract: what to do, in plain words.
	Advice string `json:"advice"`
}

// PurgeableNote is the note added on macOS when free space is short.
const PurgeableNote = "macOS: free space here does not count purgeable space (local Time Machine snapshots, caches macOS would clear), so the disk may have more room than shown"

// NewHealth builds the report document from the policy's result. purgeable
// adds the macOS note when a volume is short of space.
func NewHealth(h *backup.Health, now time.Time, purgeable bool) HealthDoc {
	doc := HealthDoc{
		SchemaVersion: SchemaVersion, GeneratedAt: now.UTC().Truncate(time.Second), OK: h.OK(),
		Devices: make([]HealthDevice, 0, len(h.Devices)), Volumes: make([]HealthVolume, 0, len(h.Volumes)),
		Findings: adviceRows(h.Findings), Notes: []string{},
	}
	for i := range h.Devices {
		d := &h.Devices[i]
		row := HealthDevice{
			UDID: d.UDID, DeviceName: d.Name, Model: d.Model,
			Backups: []string{}, SizeBytes: d.SizeBytes, ReclaimableBytes: d.ReclaimableBytes,
			Findings: adviceRows(d.Findings), OK: !d.Problem(), BackupDetails: []HealthBackup{},
		}
		if d.NewestOK != nil {
			id := d.NewestOK.ID
			row.NewestOK = &id
			row.LastBackup = timePtr(d.NewestOK.LastBackup())
		}
		for _, b := range d.Backups {
			row.Backups = append(row.Backups, b.ID)
			row.BackupDetails = append(row.BackupDetails, HealthBackup{
				ID: b.ID, Path: b.Path, State: string(b.State),
				LastBackup: timePtr(b.LastBackup()), SizeBytes: b.Usage.DiskBytes,
			})
		}
		doc.Devices = append(doc.Devices, row)
	}
	for _, v := range h.Volumes {
		doc.Volumes = append(doc.Volumes, HealthVolume{Path: v.Path, FreeBytes: v.FreeBytes, NeededBytes: v.NeededBytes, TotalBytes: v.TotalBytes})
	}
	if purgeable && len(h.Findings) > 0 {
		doc.Notes = append(doc.Notes, PurgeableNote)
	}
	return doc
}

func adviceRows(fs []backup.Finding) []AdviceRow {
	out := make([]AdviceRow, 0, len(fs))
	for _, r := range findingRows(fs) {
		out = append(out, AdviceRow{FindingRow: r, Advice: backup.Advice(backup.Code(r.Code))})
	}
	return out
}

// HealthText writes one line per device, problems first, each problem
// indented below its device with what to do; then the volumes' findings.
func HealthText(w io.Writer, doc HealthDoc, st Style) error {
	var b strings.Builder
	if len(doc.Devices) == 0 {
		b.WriteString("no backups found\n")
	}
	for _, d := range doc.Devices {
		mark := "ok     "
		if !d.OK {
			mark = "PROBLEM"
			if st.Color {
				mark = ansiRed + mark + ansiReset
			}
		}
		last := "no complete backup"
		if d.LastBackup != nil {
			last = "last good backup " + st.date(d.LastBackup)
		}
		fmt.Fprintf(&b, "%s %s (%s): %s, %s in %s", mark, oneLine(d.DeviceName), oneLine(orDash(d.Model)), last,
			size(d.SizeBytes), plural(len(d.Backups), "backup"))
		if d.ReclaimableBytes > 0 {
			fmt.Fprintf(&b, ", %s reclaimable", size(d.ReclaimableBytes))
		}
		b.WriteString("\n")
		for _, f := range d.Findings {
			writeTextFinding(&b, f)
		}
	}
	for _, f := range doc.Findings {
		b.WriteString("PROBLEM disk space\n")
		writeTextFinding(&b, f)
	}
	for _, n := range doc.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTextFinding(b *strings.Builder, f AdviceRow) {
	fmt.Fprintf(b, "        %s: %s\n", f.Code, oneLine(f.Message))
	if len(f.Examples) > 0 && f.Code != string(backup.LowFreeSpace) && f.Code != string(backup.BackupStale) && f.Code != string(backup.BackupOversized) {
		more := ""
		if f.Count > len(f.Examples) {
			more = fmt.Sprintf(" (%d in all)", f.Count)
		}
		fmt.Fprintf(b, "          e.g. %s%s\n", oneLine(strings.Join(f.Examples, ", ")), more)
	}
	fmt.Fprintf(b, "          what to do: %s\n", f.Advice)
}

// oneLine keeps a value on its line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// mdCell cleans a value for a Markdown table cell: no raw "|" and no line
// breaks, which would end the cell or the row.
func mdCell(s string) string {
	s = oneLine(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	if s == "" {
		return "-"
	}
	return s
}

// HealthMarkdown writes the report for mail or a ticket: a heading, a table
// of devices (problems first) and a list of what to do.
func HealthMarkdown(w io.Writer, doc HealthDoc) error {
	var b strings.Builder
	status := "all backups are healthy"
	if !doc.OK {
		status = "problems found"
	}
	fmt.Fprintf(&b, "# mbaudit report: %s\n\n", status)
	fmt.Fprintf(&b, "Generated %s.\n\n", doc.GeneratedAt.Format(time.RFC3339))
	b.WriteString("| Status | Device | Model | Last good backup | Backups | Size | Reclaimable |\n")
	b.WriteString("|---|---|---|---|---|---:|---:|\n")
	for _, d := range doc.Devices {
		status := "ok"
		if !d.OK {
			status = "**problem**"
		}
		last := "never"
		if d.LastBackup != nil {
			last = d.LastBackup.UTC().Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s |\n", status, mdCell(d.DeviceName), mdCell(d.Model),
			last, len(d.Backups), size(d.SizeBytes), size(d.ReclaimableBytes))
	}
	var todo []string
	for _, d := range doc.Devices {
		for _, f := range d.Findings {
			todo = append(todo, fmt.Sprintf("- **%s** `%s`: %s. What to do: %s", mdText(d.DeviceName), f.Code, mdText(f.Message), mdText(f.Advice)))
		}
	}
	for _, f := range doc.Findings {
		todo = append(todo, fmt.Sprintf("- **disk space** `%s`: %s. What to do: %s", f.Code, mdText(f.Message), mdText(f.Advice)))
	}
	if len(todo) > 0 {
		b.WriteString("\n## What to do\n\n")
		b.WriteString(strings.Join(todo, "\n") + "\n")
	}
	if len(doc.Volumes) > 0 {
		b.WriteString("\n| Volume | Free | Needed |\n|---|---:|---:|\n")
		for _, v := range doc.Volumes {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(v.Path), size(v.FreeBytes), size(v.NeededBytes))
		}
	}
	for _, n := range doc.Notes {
		fmt.Fprintf(&b, "\n> Note: %s\n", mdText(n))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdText keeps a value on one line and stops it from starting Markdown
// markup of its own.
func mdText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", `\<`, "|", `\|`)
	return r.Replace(oneLine(s))
}

// HealthProm writes the report as Prometheus text exposition format, for
// node_exporter's textfile collector.
func HealthProm(w io.Writer, doc HealthDoc) error {
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	type bk struct {
		d *HealthDevice
		b HealthBackup
	}
	var all []bk
	for i := range doc.Devices {
		for _, x := range doc.Devices[i].BackupDetails {
			all = append(all, bk{&doc.Devices[i], x})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].b.ID < all[j].b.ID })
	labels := func(x bk) string {
		return fmt.Sprintf(`id="%s",udid="%s",device="%s"`, promEscape(x.b.ID), promEscape(x.d.UDID), promEscape(x.d.DeviceName))
	}

	metric("mbaudit_backup_size_bytes", "gauge", "Space the backup takes on disk, as du counts it.")
	for _, x := range all {
		fmt.Fprintf(&b, "mbaudit_backup_size_bytes{%s} %d\n", labels(x), x.b.SizeBytes)
	}
	metric("mbaudit_backup_last_success_timestamp_seconds", "gauge", "When the backup last finished successfully (Unix time); absent when never.")
	for _, x := range all {
		if x.b.LastBackup != nil {
			fmt.Fprintf(&b, "mbaudit_backup_last_success_timestamp_seconds{%s} %d\n", labels(x), x.b.LastBackup.Unix())
		}
	}
	metric("mbaudit_backup_state", "gauge", "1 for the backup's state, 0 for the other states.")
	for _, x := range all {
		for _, s := range backup.States {
			v := 0
			if string(s) == x.b.State {
				v = 1
			}
			fmt.Fprintf(&b, "mbaudit_backup_state{%s,state=\"%s\"} %d\n", labels(x), s, v)
		}
	}
	metric("mbaudit_device_last_success_timestamp_seconds", "gauge", "When the device's newest ok backup finished (Unix time); absent when it has none.")
	for _, d := range doc.Devices {
		if d.LastBackup != nil {
			fmt.Fprintf(&b, "mbaudit_device_last_success_timestamp_seconds{udid=\"%s\",device=\"%s\"} %d\n", promEscape(d.UDID), promEscape(d.DeviceName), d.LastBackup.Unix())
		}
	}
	metric("mbaudit_device_reclaimable_bytes", "gauge", "Bytes that could go without losing a good backup of the device.")
	for _, d := range doc.Devices {
		fmt.Fprintf(&b, "mbaudit_device_reclaimable_bytes{udid=\"%s\",device=\"%s\"} %d\n", promEscape(d.UDID), promEscape(d.DeviceName), d.ReclaimableBytes)
	}
	metric("mbaudit_device_findings", "gauge", "Problems found for the device, by finding code.")
	for _, d := range doc.Devices {
		for _, f := range d.Findings {
			fmt.Fprintf(&b, "mbaudit_device_findings{udid=\"%s\",device=\"%s\",code=\"%s\"} %d\n", promEscape(d.UDID), promEscape(d.DeviceName), promEscape(f.Code), f.Count)
		}
	}
	metric("mbaudit_volume_free_bytes", "gauge", "Free space on the volume that holds backups (purgeable space not counted).")
	for _, v := range doc.Volumes {
		fmt.Fprintf(&b, "mbaudit_volume_free_bytes{path=\"%s\"} %d\n", promEscape(v.Path), v.FreeBytes)
	}
	metric("mbaudit_volume_needed_bytes", "gauge", "Free space the next backup on the volume needs.")
	for _, v := range doc.Volumes {
		fmt.Fprintf(&b, "mbaudit_volume_needed_bytes{path=\"%s\"} %d\n", promEscape(v.Path), v.NeededBytes)
	}
	metric("mbaudit_report_ok", "gauge", "1 when nothing needs a person, else 0.")
	fmt.Fprintf(&b, "mbaudit_report_ok %d\n", boolInt(doc.OK))
	metric("mbaudit_report_timestamp_seconds", "gauge", "When the report ran (Unix time).")
	fmt.Fprintf(&b, "mbaudit_report_timestamp_seconds %d\n", doc.GeneratedAt.Unix())
	metric("mbaudit_report_success", "gauge", "1 when the report ran.")
	b.WriteString("mbaudit_report_success 1\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// promEscape escapes a label value per the text exposition format:
// backslash, double quote and line feed.
func promEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
