package backup

import (
	"strings"
	"testing"
	"time"

	"howett.net/plist"
)

func encode(t testing.TB, v any, format int) []byte {
	t.Helper()
	b, err := plist.Marshal(v, format)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goodStatus() map[string]any {
	return map[string]any{
		"Version": "3.3", "UUID": "84006397-D01C-4608-9DE2-D496A06FBE87",
		"Date": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "BackupState": "new",
		"SnapshotState": "finished", "IsFullBackup": false,
	}
}

func goodManifest() map[string]any {
	return map[string]any{
		"Version": "10.0", "Date": time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), "IsEncrypted": false,
		"Lockdown": map[string]any{"ProductVersion": "17.5.1", "ProductType": "iPhone14,5", "DeviceName": "Ana"},
	}
}

func TestParseStatusPlist(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string // "" for valid
	}{
		{"valid", func(map[string]any) {}, ""},
		{"version as number", func(m map[string]any) { m["Version"] = 3.3 }, ""},
		{"uploading is valid", func(m map[string]any) { m["SnapshotState"] = "uploading" }, ""},
		{"unknown snapshot state", func(m map[string]any) { m["SnapshotState"] = "bogus" }, "unknown SnapshotState"},
		{"unknown backup state", func(m map[string]any) { m["BackupState"] = "stale" }, "unknown BackupState"},
		{"date as string", func(m map[string]any) { m["Date"] = "yesterday" }, `"Date" is a string, not a date`},
		{"uuid as number", func(m map[string]any) { m["UUID"] = 7 }, `"UUID" is a number`},
		{"missing snapshot state", func(m map[string]any) { delete(m, "SnapshotState") }, `"SnapshotState" is missing`},
		{"old version", func(m map[string]any) { m["Version"] = "2.0" }, "unsupported status version"},
		{"future version", func(m map[string]any) { m["Version"] = "4.0" }, "unsupported status version"},
		{"version not a number", func(m map[string]any) { m["Version"] = "x" }, "not a number"},
		{"no version", func(m map[string]any) { delete(m, "Version") }, `"Version" is missing`},
		{"full backup as data", func(m map[string]any) { m["IsFullBackup"] = []byte{1} }, "not a boolean"},
	}
	for _, tt := range tests {
		for _, format := range []int{plist.XMLFormat, plist.BinaryFormat} {
			t.Run(tt.name, func(t *testing.T) {
				m := goodStatus()
				tt.edit(m)
				err := ParsePlist("Status.plist", encode(t, m, format))
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("unexpected error: %v", err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
			})
		}
	}
}

func TestParseManifestPlist(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string
	}{
		{"valid", func(map[string]any) {}, ""},
		{"numeric version", func(m map[string]any) { m["Version"] = 10.0 }, ""},
		{"no lockdown", func(m map[string]any) { delete(m, "Lockdown") }, `"Lockdown" is missing`},
		{"no date", func(m map[string]any) { delete(m, "Date") }, `"Date" is missing`},
		{"encrypted as string", func(m map[string]any) { m["IsEncrypted"] = "yes" }, `"IsEncrypted" is a string`},
		{"lockdown as array", func(m map[string]any) { m["Lockdown"] = []any{1} }, "not a dictionary"},
		{"lockdown field wrong", func(m map[string]any) {
			m["Lockdown"] = map[string]any{"ProductVersion": 17}
		}, `Lockdown: "ProductVersion" is a number`},
		{"keybag as string", func(m map[string]any) { m["BackupKeyBag"] = "x" }, `"BackupKeyBag" is a string, not data`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := goodManifest()
			tt.edit(m)
			err := ParsePlist("Manifest.plist", encode(t, m, plist.BinaryFormat))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodePlistDictBadInput(t *testing.T) {
	good := encode(t, goodStatus(), plist.BinaryFormat)
	tests := []struct {
		name     string
		data     []byte
		missing  bool
		contains string
	}{
		{"empty", nil, true, "empty"},
		{"garbage", []byte("\x00\x01\x02garbage\xff\xfe"), false, "plist"},
		{"bare word", []byte("hello"), false, "not an XML or binary plist"},
		{"truncated binary", good[:len(good)/2], false, "not a plist"},
		{"truncated xml", encode(t, goodStatus(), plist.XMLFormat)[:100], false, "not a plist"},
		{"array at top", encode(t, []any{"a", 1}, plist.XMLFormat), false, "top level is an array"},
		{"string at top", encode(t, "x", plist.BinaryFormat), false, "top level is a string"},
		{"only header", []byte("bplist00"), false, "not a plist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, perr := decodePlistDict(tt.data)
			if perr == nil {
				t.Fatalf("decoded %v, want an error", d)
			}
			if perr.Missing != tt.missing || !strings.Contains(perr.Reason, tt.contains) {
				t.Fatalf("error = %+v, want missing=%v and %q", perr, tt.missing, tt.contains)
			}
		})
	}
}

func TestParseInfoPlistTypes(t *testing.T) {
	ok := map[string]any{"Device Name": "Ana", "Product Type": "iPhone14,5", "GUID": []byte{1, 2}}
	if err := ParsePlist("Info.plist", encode(t, ok, plist.XMLFormat)); err != nil {
		t.Fatalf("GUID may be data or a string: %v", err)
	}
	bad := map[string]any{"Device Name": "Ana", "Product Type": 14}
	err := ParsePlist("Info.plist", encode(t, bad, plist.XMLFormat))
	if err == nil || !strings.Contains(err.Error(), `"Product Type" is a number`) {
		t.Fatalf("error = %v", err)
	}
	bad = map[string]any{"Installed Applications": []any{"a", 3}}
	if err := ParsePlist("Info.plist", encode(t, bad, plist.XMLFormat)); err == nil {
		t.Fatal("a number among the installed applications was accepted")
	}
}

// FuzzParsePlist feeds the plist readers arbitrary bytes: they must return
// a verdict, never panic.
func FuzzParsePlist(f *testing.F) {
	for _, v := range []any{goodStatus(), goodManifest(), map[string]any{"Device Name": "x"}, []any{1}} {
		f.Add(encode(f, v, plist.BinaryFormat))
		f.Add(encode(f, v, plist.XMLFormat))
	}
	f.Add([]byte("bplist00\x00\x00"))
	f.Add([]byte("<?xml version=\"1.0\"?><plist><dict><key>a</key>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"Info.plist", "Manifest.plist", "Status.plist"} {
			_ = ParsePlist(name, data)
		}
	})
}
