package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mbaudit/mbaudit/backup"
)

func sampleSpaces() ([]*backup.Backup, []*backup.Space) {
	bs := sampleBackups()[:1]
	s := &backup.Space{By: backup.ByApp,
		Groups: []backup.SpaceGroup{
			{Key: "net.whatsapp.WhatsApp", Name: "WhatsApp Messenger", Files: 1200, Bytes: 3 << 30, DiskBytes: 3<<30 + 4096},
			{Key: "CameraRollDomain", Name: "CameraRollDomain", Files: 900, Bytes: 1 << 30, DiskBytes: 1 << 30},
			{Key: "com.google.chrome.ios", Name: "Google Chrome", Files: 40, Bytes: 5 << 20, DiskBytes: 0},
		},
		Top: []backup.SpaceFile{
			{Domain: "AppDomainGroup-group.net.whatsapp.WhatsApp.shared", RelativePath: "ChatStorage.sqlite", Bytes: 700 << 20},
			{Domain: "CameraRollDomain", RelativePath: "Media/DCIM/100APPLE/IMG_0001.MOV", Bytes: 300 << 20},
		},
		Files: 2140, Bytes: 3<<30 + 1<<30 + 5<<20, DiskBytes: 3<<30 + 4096 + 1<<30,
	}
	return bs, []*backup.Space{s}
}

func TestUsageGolden(t *testing.T) {
	bs, spaces := sampleSpaces()
	doc := NewUsageBackups(bs, spaces, backup.ByApp, clock)
	golden(t, "usage.table", render(t, func(b *bytes.Buffer) error { return UsageTable(b, doc, Style{}, 0) }))
	golden(t, "usage.tty", render(t, func(b *bytes.Buffer) error {
		return UsageTable(b, doc, Style{Color: true, Humanize: true, Now: clock}, 120)
	}))
	golden(t, "usage.json", render(t, func(b *bytes.Buffer) error { return JSON(b, doc) }))
	golden(t, "usage.csv", render(t, func(b *bytes.Buffer) error { return UsageCSV(b, doc, false) }))
	golden(t, "usage-top.csv", render(t, func(b *bytes.Buffer) error { return UsageCSV(b, doc, true) }))

	devs := sampleBackups()
	devs[0].Usage.Linked = map[backup.Inode]int64{{Dev: 1, Ino: 7}: 1 << 30}
	devs[1].Usage.Linked = map[backup.Inode]int64{{Dev: 1, Ino: 7}: 1 << 30}
	ddoc := NewUsageDevices(devs, backup.ByApp, clock)
	golden(t, "usage-devices.table", render(t, func(b *bytes.Buffer) error { return UsageTable(b, ddoc, Style{}, 0) }))
	golden(t, "usage-devices.tty", render(t, func(b *bytes.Buffer) error {
		return UsageTable(b, ddoc, Style{Color: true, Humanize: true, Now: clock}, 120)
	}))
	golden(t, "usage-devices.json", render(t, func(b *bytes.Buffer) error { return JSON(b, ddoc) }))
	golden(t, "usage-devices.csv", render(t, func(b *bytes.Buffer) error { return UsageCSV(b, ddoc, false) }))
	for _, d := range ddoc.Devices {
		if d.UDID != devs[0].UDID {
			continue
		}
		for _, w := range d.Backups {
			if w.WouldFreeBytes != w.SizeBytes-1<<30 {
				t.Errorf("shared gigabyte counted as freed: %+v", w)
			}
		}
		if d.SizeBytes != 2*(5<<30)-1<<30 {
			t.Errorf("device size %d counts the shared gigabyte twice", d.SizeBytes)
		}
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		v, top int64
		cells  int
		want   string
	}{
		{0, 10, 10, ""},
		{10, 10, 4, "████"},
		{5, 10, 4, "██"},
		{1, 16, 1, "▏"},
		{3, 16, 2, "▍"},
		{1, 1 << 40, 10, "▏"},
	} {
		if got := Bar(tc.v, tc.top, tc.cells); got != tc.want {
			t.Errorf("Bar(%d, %d, %d) = %q, want %q", tc.v, tc.top, tc.cells, got, tc.want)
		}
	}
	// Plain text has no bars.
	bs, spaces := sampleSpaces()
	out := render(t, func(b *bytes.Buffer) error {
		return UsageTable(b, NewUsageBackups(bs, spaces, backup.ByApp, clock), Style{}, 0)
	})
	if strings.ContainsRune(string(out), '█') {
		t.Error("bars in plain text")
	}
}
