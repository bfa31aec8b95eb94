package backuptest

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"time"
)

// infoPlist is what a host tool (idevicebackup2) writes at the start of a backup.
func (w *writer) infoPlist() *pdict {
	s, d, b := w.s, w.dev, w.b
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x696e666f))
	apps := &pdict{}
	var installed []any
	for _, a := range installedApps {
		meta := binaryPlist(newDict(
			"artistName", a.artist,
			"bundleShortVersionString", a.version,
			"bundleVersion", a.version,
			"genre", a.genre,
			"itemId", 300000000+int64(r.IntN(1e9)),
			"itemName", a.name,
			"kind", "software",
			"softwareVersionBundleId", a.bundle,
		))
		sinf := make([]byte, 64)
		fillRandom(sinf, r.Uint64())
		apps.set(a.bundle, newDict("ApplicationSINF", sinf, "iTunesMetadata", meta))
		installed = append(installed, a.bundle)
	}
	target, unique := b.ID, strings.ToUpper(b.UDID)
	display := d.Name
	if !s.dated.IsZero() {
		display += " - " + s.dated.Format("Jan 2, 2006 at 3:04 PM")
	}
	if s.udidMism {
		other := udidFor(s.seed+7919, d, len(b.UDID) == 40)
		b.MismatchedUDID = other
		target, unique = other, strings.ToUpper(other)
	}
	p := newDict("Applications", apps,
		"Build Version", d.Build,
		"Device Name", d.Name,
		"Display Name", display,
		"GUID", d.GUID)
	if d.ICCID != "" {
		p.set("ICCID", d.ICCID)
	}
	if d.IMEI != "" {
		p.set("IMEI", d.IMEI)
	}
	p.set("Installed Applications", installed)
	p.set("Last Backup Date", w.startDate().Add(-30*time.Second))
	p.set("Product Type", d.ProductType)
	p.set("Product Version", d.Version)
	p.set("Serial Number", d.Serial)
	p.set("Target Identifier", target)
	p.set("Target Type", "Device")
	p.set("Unique Identifier", unique)
	p.set("iTunes Settings", &pdict{})
	p.set("iTunes Version", "10.0.1")
	return p
}

// startDate is when the device began the backup (Manifest.plist Date).
func (w *writer) startDate() time.Time {
	r := rand.New(rand.NewPCG(uint64(w.s.seed), 0x7374617274))
	return w.date.Add(-time.Duration(240+r.IntN(1200)) * time.Second).Truncate(time.Second)
}

// manifestPlist holds the backup properties the device writes.
func (w *writer) manifestPlist(date time.Time) *pdict {
	s, d := w.s, w.dev
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x6d616e6966))
	apps := &pdict{}
	for _, a := range installedApps {
		apps.set(a.bundle, newDict(
			"CFBundleIdentifier", a.bundle,
			"CFBundleVersion", a.version,
			"ContainerContentClass", "Data/Application",
			"Path", "/private/var/containers/Bundle/Application/"+uuidString(r)+"/"+strings.Fields(a.name)[0]+".app",
		))
	}
	version, sysVersion := "10.0", "24.0"
	if s.legacy {
		version, sysVersion = "9.1", "20.0"
	}
	p := newDict("Applications", apps)
	switch {
	case w.crypto != nil && !s.noKeybag:
		p.set("BackupKeyBag", w.crypto.Keybag())
	case w.keyEnc && !s.noKeybag:
		p.set("BackupKeyBag", keybag(r)) // a decrypted copy's: no password fits it
	}
	p.set("Date", date)
	p.set("IsEncrypted", w.keyEnc)
	p.set("Lockdown", newDict(
		"BuildVersion", d.Build,
		"DeviceName", d.Name,
		"ProductType", d.ProductType,
		"ProductVersion", d.Version,
		"SerialNumber", d.Serial,
		"UniqueDeviceID", w.b.UDID,
		"com.apple.Accessibility", newDict(
			"ClosedCaptioningEnabledByiTunes", false,
			"InvertDisplayEnabledByiTunes", false,
			"MonoAudioEnabledByiTunes", false,
			"SpeakAutoCorrectionsEnabledByiTunes", false,
			"VoiceOverTouchEnabledByiTunes", false,
			"ZoomTouchEnabledByiTunes", false,
		),
		"com.apple.MobileDeviceCrashCopy", &pdict{},
		"com.apple.TerminalFlashr", &pdict{},
		"com.apple.mobile.data_sync", newDict(
			"Contacts", newDict("Account Names", []any{"iCloud"}, "Sources", []any{"iCloud"}),
		),
		"com.apple.mobile.iTunes.accessories", &pdict{},
	))
	switch {
	case w.keyEnc && !s.legacy && !s.noManKey && w.manWrap != nil:
		p.set("ManifestKey", w.manWrap)
	case w.keyEnc && !s.legacy && !s.noManKey:
		mk := make([]byte, 44)
		binary.LittleEndian.PutUint32(mk, 4) // protection class of the key
		fillRandom(mk[4:], r.Uint64())
		p.set("ManifestKey", mk)
	}
	p.set("SystemDomainsVersion", sysVersion)
	p.set("Version", version)
	p.set("WasPasscodeSet", true)
	return p
}

// statusPlist is the device's progress marker.
func (w *writer) statusPlist() *pdict {
	s := w.s
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x737461747573))
	state, snap := "new", "finished"
	if s.backState != nil {
		state = *s.backState
	}
	if s.snapState != nil {
		snap = *s.snapState
	}
	version := "3.3"
	if s.legacy {
		version = "2.4"
	}
	return newDict(
		"BackupState", state,
		"Date", w.date,
		"IsFullBackup", false,
		"SnapshotState", snap,
		"UUID", uuidString(r),
		"Version", version,
	)
}

// keybag returns a plausible BackupKeyBag: TLV blocks (4-byte tag, 4-byte
// big-endian length, value), a header and one group per protection class.
// Its keys are random: no password unlocks it.
func keybag(r *rand.Rand) []byte {
	var b []byte
	tlv := func(tag string, v []byte) {
		b = append(b, tag...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	rnd := func(n int) []byte {
		x := make([]byte, n)
		fillRandom(x, r.Uint64())
		return x
	}
	tlv("VERS", u32(3))
	tlv("TYPE", u32(1)) // backup keybag
	tlv("UUID", rnd(16))
	tlv("HMCK", rnd(40))
	tlv("WRAP", u32(0))
	tlv("SALT", rnd(20))
	tlv("ITER", u32(10000))
	tlv("DPWT", u32(1))
	tlv("DPIC", u32(10000000))
	tlv("DPSL", rnd(20))
	for class := uint32(1); class <= 11; class++ {
		tlv("UUID", rnd(16))
		tlv("CLAS", u32(class))
		wrap := uint32(3)
		if class == 6 || class == 11 {
			wrap = 2
		}
		tlv("WRAP", u32(wrap))
		ktyp := uint32(0)
		if class >= 6 && class <= 10 {
			ktyp = 1
		}
		tlv("KTYP", u32(ktyp))
		tlv("WPKY", rnd(40))
	}
	return b
}

// render encodes plist p with its defect, if any; ok is false when the file
// must not exist.
func (w *writer) render(which PlistName, p *pdict) (data []byte, ok bool) {
	s := w.s
	xml := s.format == formatXML || (s.format == formatDefault && which == InfoPlist)
	enc := func(v any) []byte {
		if xml {
			return xmlPlist(v)
		}
		return binaryPlist(v)
	}
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x72656e646572+uint64(which)))
	switch s.plists[which] {
	case plistMissing:
		return nil, false
	case plistEmpty:
		return []byte{}, true
	case plistGarbage:
		g := make([]byte, 200+r.IntN(400))
		fillRandom(g, r.Uint64())
		g[0] = 0xf3 // neither "bplist" nor "<?xml"
		return g, true
	case plistTruncated:
		full := binaryPlist(p)
		return full[:len(full)*3/5], true
	case plistWrongType:
		switch which {
		case InfoPlist:
			p.set("Product Type", 14)
		case ManifestPlist:
			p.set("IsEncrypted", map[bool]string{true: "true", false: "false"}[w.keyEnc])
		case StatusPlist:
			p.set("Date", w.date.Format(time.RFC3339))
		}
	case plistWrongTopLevel:
		return enc([]any{p}), true
	}
	return enc(p), true
}
