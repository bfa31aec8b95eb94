package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var clock = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (rerun with -update if intended):\n%s", name, path, got)
	}
}

// sampleBackups are fixed values: one healthy, one dated copy, one
// incomplete with file findings, one corrupt, one never verified.
func sampleBackups() []*backup.Backup {
	d := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	ok := &backup.Backup{
		Path: "/B/00008110-000A11112222333E", ID: "00008110-000A11112222333E", UDID: "00008110-000A11112222333E",
		Info:     &backup.InfoPlist{DeviceName: "Ana's iPhone", ProductType: "iPhone14,5", ProductVersion: "17.5.1", LastBackupDate: d("2026-11-18T20:00:00Z"), SerialNumber: "SERIAL1", IMEI: "IMEI1"},
		Manifest: &backup.ManifestPlist{Date: d("2026-11-18T20:01:00Z"), Lockdown: backup.Lockdown{ProductVersion: "17.5.1"}},
		Status:   &backup.StatusPlist{Date: d("2026-11-18T20:20:00Z"), SnapshotState: "finished", BackupState: "new"},
		Format:   backup.FormatManifestDB, State: backup.StateOK,
		Usage: backup.Usage{DiskBytes: 5 << 30, ApparentBytes: 4 << 30, Files: 120345},
		Check: &backup.Verified{Counts: backup.Counts{RowsRead: 170000, FilesListed: 120340, FilesChecked: 120340, BytesListed: 4 << 30}},
	}
	cp := *ok
	cp.ID, cp.Path, cp.CopyTime = ok.ID+"-20260101-101010", ok.Path+"-20260101-101010", d("2026-01-01T10:10:10Z")
	cp.Status = &backup.StatusPlist{Date: d("2025-12-31T09:00:00Z"), SnapshotState: "finished", BackupState: "new"}
	inc := &backup.Backup{
		Path: "/B/00008101-0025BDE9D3354D3D", ID: "00008101-0025BDE9D3354D3D", UDID: "00008101-0025BDE9D3354D3D",
		Info:   &backup.InfoPlist{DeviceName: "Ben's iPad | work", ProductType: "iPad13,1", ProductVersion: "17.4.1"},
		Format: backup.FormatManifestDB, State: backup.StateIncomplete, Encrypted: true,
		Usage: backup.Usage{DiskBytes: 3 << 20, ApparentBytes: 3 << 20, Files: 40, SnapshotBytes: 1 << 20},
		Check: &backup.Verified{Counts: backup.Counts{RowsRead: 60, FilesListed: 40, FilesChecked: 40, BytesListed: 3 << 20}},
	}
	inc.Add(backup.StatusPlistMissing, 1, "Status.plist is missing")
	inc.Add(backup.FileMissing, 12, "listed files have no blob", "HomeDomain/Library/SMS/sms.db", "CameraRollDomain/Media/DCIM/100APPLE/IMG_0001.HEIC")
	inc.Add(backup.FileOrphan, 1, "blobs on disk that the index does not list (8192 bytes reclaimable)", "e7/e794f6ffcc3c222535f47684a63d5178da3c4500")
	bad := &backup.Backup{
		Path: "/B/1cb128eafa77c5be74283e9a3a2130af36a3c059", ID: "1cb128eafa77c5be74283e9a3a2130af36a3c059", UDID: "1cb128eafa77c5be74283e9a3a2130af36a3c059",
		Format: backup.FormatManifestDB, State: backup.StateCorrupt,
	}
	bad.Add(backup.InfoPlistInvalid, 1, "Info.plist cannot be used: top level is an array, not a dictionary")
	bad.Add(backup.ManifestDBInvalid, 1, "Manifest.db is neither SQLite nor an encrypted index")
	busy := &backup.Backup{
		Path: "/B/00008020-000B44445555666E", ID: "00008020-000B44445555666E", UDID: "00008020-000B44445555666E",
		Info:   &backup.InfoPlist{DeviceName: "Dan's iPhone", ProductType: "iPhone8,1", ProductVersion: "9.3.5"},
		Format: backup.FormatMbdb, State: backup.StateBusy,
	}
	busy.Add(backup.SnapshotUnfinished, 1, `the last backup stopped while uploading (SnapshotState "uploading")`)
	return []*backup.Backup{ok, &cp, inc, bad, busy}
}

func render(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestListGolden(t *testing.T) {
	vols := []backup.Volume{{Path: "/B", FreeBytes: 40 << 30, TotalBytes: 500 << 30}}
	doc := NewList(sampleBackups(), []string{"/B"}, []string{"/B/_unback_"}, vols, clock, Privacy{})
	golden(t, "list.table", render(t, func(b *bytes.Buffer) error { return ListTable(b, doc, Style{}) }))
	golden(t, "list.tty", render(t, func(b *bytes.Buffer) error {
		return ListTable(b, doc, Style{Color: true, Humanize: true, Now: clock})
	}))
	golden(t, "list.json", render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }))
	golden(t, "list.csv", render(t, func(b *bytes.Buffer) error { return ListCSV(b, doc) }))
	withIDs := NewList(sampleBackups()[:1], nil, nil, nil, clock, Privacy{ShowIdentifiers: true})
	golden(t, "list-identifiers.json", render(t, func(b *bytes.Buffer) error { return JSON(b, withIDs) }))
}

func TestVerifyGolden(t *testing.T) {
	doc := NewVerify(sampleBackups(), clock)
	golden(t, "verify.table", render(t, func(b *bytes.Buffer) error { return VerifyTable(b, doc, Style{}) }))
	golden(t, "verify.json", render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }))
	golden(t, "verify.csv", render(t, func(b *bytes.Buffer) error { return VerifyCSV(b, doc) }))
}

// Identifiers never reach the output without --show-identifiers.
func TestNoIdentifiersByDefault(t *testing.T) {
	doc := NewList(sampleBackups(), nil, nil, nil, clock, Privacy{})
	out := render(t, func(b *bytes.Buffer) error { return JSON(b, doc) })
	for _, s := range []string{"SERIAL1", "IMEI1"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("%s in the output", s)
		}
	}
}

// The JSON documents always carry lists, never null, where the contract
// shows lists.
func TestJSONListsNotNull(t *testing.T) {
	doc := NewList(nil, nil, nil, nil, clock, Privacy{})
	var m map[string]any
	if err := json.Unmarshal(render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"roots", "skipped", "backups", "volumes"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s is %v, want a list", k, m[k])
		}
	}
}
