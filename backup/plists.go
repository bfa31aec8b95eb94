package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"howett.net/plist"
)

// maxPlistBytes bounds what mbaudit reads of one plist. Info.plist carries
// app icons and can reach tens of megabytes; anything far larger is not a
// plist a host or device wrote.
const maxPlistBytes = 512 << 20

// InfoPlist is what mbaudit reads of Info.plist, the summary the host writes
// at the start of every backup attempt.
type InfoPlist struct {
	DeviceName       string
	DisplayName      string
	ProductName      string
	ProductType      string
	ProductVersion   string
	BuildVersion     string
	TargetIdentifier string
	UniqueIdentifier string
	LastBackupDate   time.Time
	// Personal identifiers: never printed without --show-identifiers.
	SerialNumber string
	IMEI         string
	MEID         string
	ICCID        string
	PhoneNumber  string
	// InstalledApps lists bundle IDs from "Installed Applications".
	InstalledApps []string
	// Applications holds the raw iTunesMetadata of each app, by bundle ID.
	Applications map[string][]byte
}

// ManifestPlist is what mbaudit reads of Manifest.plist, the backup
// properties the device writes.
type ManifestPlist struct {
	Version        string
	Date           time.Time
	IsEncrypted    bool
	WasPasscodeSet bool
	BackupKeyBag   []byte
	ManifestKey    []byte
	Lockdown       Lockdown
}

// Lockdown is the device identity inside Manifest.plist.
type Lockdown struct {
	DeviceName     string
	ProductType    string
	ProductVersion string
	BuildVersion   string
	UniqueDeviceID string
	SerialNumber   string
}

// StatusPlist is Status.plist, the device's progress and completion marker.
type StatusPlist struct {
	Version       string
	UUID          string
	Date          time.Time
	BackupState   string // empty, old, new
	SnapshotState string // uploading, moving, removing, finished
	IsFullBackup  bool
	// Legacy is set for a version-1 status (the "Backup Success" key).
	Legacy bool
}

// plistError says why a plist could not be used. Missing means absent or 0
// bytes; Unreadable means the read itself failed; otherwise it is invalid.
type plistError struct {
	Missing    bool
	Unreadable bool
	Reason     string
}

func (e *plistError) Error() string { return e.Reason }

func invalid(format string, args ...any) *plistError {
	return &plistError{Reason: fmt.Sprintf(format, args...)}
}

// readPlistDict reads a plist file (XML or binary) whose top level must be a
// dictionary.
func readPlistDict(path string) (map[string]any, *plistError) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &plistError{Missing: true, Reason: "missing"}
		}
		return nil, &plistError{Unreadable: true, Reason: describeIOError(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &plistError{Unreadable: true, Reason: describeIOError(err)}
	}
	if fi.IsDir() {
		return nil, invalid("is a folder, not a file")
	}
	if fi.Size() == 0 {
		return nil, &plistError{Missing: true, Reason: "empty (0 bytes)"}
	}
	if fi.Size() > maxPlistBytes {
		return nil, invalid("too large for a plist (%d bytes)", fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPlistBytes+1))
	if err != nil {
		return nil, &plistError{Unreadable: true, Reason: describeIOError(err)}
	}
	return decodePlistDict(data)
}

// decodePlistDict decodes plist bytes whose top level must be a dictionary.
func decodePlistDict(data []byte) (dict map[string]any, perr *plistError) {
	if len(data) == 0 {
		return nil, &plistError{Missing: true, Reason: "empty (0 bytes)"}
	}
	// The decoder is fuzzed and has not been seen to panic, but a plist is
	// hostile input and a panic would end the whole audit.
	defer func() {
		if r := recover(); r != nil {
			dict, perr = nil, invalid("not a plist (decoder failed: %v)", r)
		}
	}()
	var v any
	format, err := plist.Unmarshal(data, &v)
	if err != nil {
		return nil, invalid("not a plist: %s", shortErr(err))
	}
	// The OpenStep text format accepts almost any bare word as a string, so
	// garbage often "parses"; only XML and binary plists are real ones here.
	if format != plist.XMLFormat && format != plist.BinaryFormat {
		return nil, invalid("not an XML or binary plist")
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("top level is %s, not a dictionary", typeName(v))
	}
	return d, nil
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// fields reads typed values out of a plist dictionary, remembering the first
// type error so a caller checks once.
type fields struct {
	d   map[string]any
	err *plistError
}

func (f *fields) fail(key, want string, v any) {
	if f.err == nil {
		f.err = invalid("%q is %s, not %s", key, typeName(v), want)
	}
}

func (f *fields) require(key string) bool {
	if _, ok := f.d[key]; !ok {
		if f.err == nil {
			f.err = invalid("%q is missing", key)
		}
		return false
	}
	return true
}

func (f *fields) str(key string) string {
	v, ok := f.d[key]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(key, "a string", v)
	}
	return s
}

// version reads a version written as a string ("3.3") or a number.
func (f *fields) version(key string) string {
	v, ok := f.d[key]
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case uint64:
		return strconv.FormatUint(x, 10) + ".0"
	case int64:
		return strconv.FormatInt(x, 10) + ".0"
	}
	f.fail(key, "a version string or number", v)
	return ""
}

func (f *fields) date(key string) time.Time {
	v, ok := f.d[key]
	if !ok {
		return time.Time{}
	}
	t, ok := v.(time.Time)
	if !ok {
		f.fail(key, "a date", v)
	}
	return t.UTC()
}

func (f *fields) boolean(key string) bool {
	v, ok := f.d[key]
	if !ok {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case uint64:
		return x != 0
	case int64:
		return x != 0
	}
	f.fail(key, "a boolean", v)
	return false
}

func (f *fields) data(key string) []byte {
	v, ok := f.d[key]
	if !ok {
		return nil
	}
	b, ok := v.([]byte)
	if !ok {
		f.fail(key, "data", v)
	}
	return b
}

func (f *fields) dict(key string) map[string]any {
	v, ok := f.d[key]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		f.fail(key, "a dictionary", v)
	}
	return m
}

func (f *fields) strings(key string) []string {
	v, ok := f.d[key]
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		f.fail(key, "an array", v)
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			f.fail(key+" item", "a string", e)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case uint64, int64, float64:
		return "a number"
	case time.Time:
		return "a date"
	case []byte:
		return "data"
	case map[string]any:
		return "a dictionary"
	case []any:
		return "an array"
	case plist.UID:
		return "a reference"
	}
	return fmt.Sprintf("%T", v)
}

// parseInfoPlist checks and reads Info.plist. Hosts differ in which keys they
// write (pymobiledevice3 omits Last Backup Date), so no key is required, but
// every key present must have its type.
func parseInfoPlist(d map[string]any) (*InfoPlist, *plistError) {
	f := &fields{d: d}
	info := &InfoPlist{
		DeviceName:       f.str("Device Name"),
		DisplayName:      f.str("Display Name"),
		ProductName:      f.str("Product Name"),
		ProductType:      f.str("Product Type"),
		ProductVersion:   f.str("Product Version"),
		BuildVersion:     f.str("Build Version"),
		TargetIdentifier: f.str("Target Identifier"),
		UniqueIdentifier: f.str("Unique Identifier"),
		LastBackupDate:   f.date("Last Backup Date"),
		SerialNumber:     f.str("Serial Number"),
		IMEI:             f.str("IMEI"),
		MEID:             f.str("MEID"),
		ICCID:            f.str("ICCID"),
		PhoneNumber:      f.str("Phone Number"),
		InstalledApps:    f.strings("Installed Applications"),
	}
	if apps := f.dict("Applications"); apps != nil {
		info.Applications = make(map[string][]byte, len(apps))
		for id, v := range apps {
			app, ok := v.(map[string]any)
			if !ok {
				continue // not ours to judge: only the metadata is used
			}
			if meta, ok := app["iTunesMetadata"].([]byte); ok {
				info.Applications[id] = meta
			}
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return info, nil
}

// parseManifestPlist checks and reads Manifest.plist: Version, Date,
// IsEncrypted and Lockdown are required (a restore needs them).
func parseManifestPlist(d map[string]any) (*ManifestPlist, *plistError) {
	f := &fields{d: d}
	for _, k := range []string{"Version", "Date", "IsEncrypted", "Lockdown"} {
		f.require(k)
	}
	m := &ManifestPlist{
		Version:        f.version("Version"),
		Date:           f.date("Date"),
		IsEncrypted:    f.boolean("IsEncrypted"),
		WasPasscodeSet: f.boolean("WasPasscodeSet"),
		BackupKeyBag:   f.data("BackupKeyBag"),
		ManifestKey:    f.data("ManifestKey"),
	}
	if ld := f.dict("Lockdown"); ld != nil {
		l := &fields{d: ld}
		m.Lockdown = Lockdown{
			DeviceName:     l.str("DeviceName"),
			ProductType:    l.str("ProductType"),
			ProductVersion: l.str("ProductVersion"),
			BuildVersion:   l.str("BuildVersion"),
			UniqueDeviceID: l.str("UniqueDeviceID"),
			SerialNumber:   l.str("SerialNumber"),
		}
		if l.err != nil && f.err == nil {
			f.err = invalid("Lockdown: %s", l.err.Reason)
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return m, nil
}

var (
	backupStates   = []string{"empty", "old", "new"}
	snapshotStates = []string{"uploading", "moving", "removing", "finished"}
)

// parseStatusPlist checks and reads Status.plist with the device's own rules:
// from version 2.0 on, UUID, Date, BackupState, SnapshotState and
// IsFullBackup are required with their types, the states must be known
// names, and the version must be in 2.4 <= v < 4.0.
func parseStatusPlist(d map[string]any) (*StatusPlist, *plistError) {
	f := &fields{d: d}
	s := &StatusPlist{Version: f.version("Version")}
	if f.err != nil {
		return nil, f.err
	}
	if s.Version == "" {
		if _, ok := d["Backup Success"]; ok {
			// The version-1 protocol of iOS 3 and older: the device treats it
			// as an old backup and starts over.
			s.Legacy = true
			s.BackupState = "old"
			s.SnapshotState = "finished"
			if f.boolean("Backup Success"); f.err != nil {
				return nil, f.err
			}
			return s, nil
		}
		return nil, invalid(`"Version" is missing`)
	}
	v, err := strconv.ParseFloat(s.Version, 64)
	if err != nil {
		return nil, invalid("Version %q is not a number", s.Version)
	}
	if v < 2.4 || v >= 4.0 {
		return nil, invalid("unsupported status version %s", s.Version)
	}
	for _, k := range []string{"UUID", "Date", "BackupState", "SnapshotState", "IsFullBackup"} {
		f.require(k)
	}
	s.UUID = f.str("UUID")
	s.Date = f.date("Date")
	s.BackupState = f.str("BackupState")
	s.SnapshotState = f.str("SnapshotState")
	s.IsFullBackup = f.boolean("IsFullBackup")
	if f.err != nil {
		return nil, f.err
	}
	if !oneOf(s.BackupState, backupStates) {
		return nil, invalid("unknown BackupState %q", s.BackupState)
	}
	if !oneOf(s.SnapshotState, snapshotStates) {
		return nil, invalid("unknown SnapshotState %q", s.SnapshotState)
	}
	return s, nil
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// ParsePlist decodes the named backup plist ("Info.plist", "Manifest.plist"
// or "Status.plist") from bytes with the same checks an audit applies. It
// exists for fuzzing and for tools; an audit reads the files itself.
func ParsePlist(name string, data []byte) error {
	d, perr := decodePlistDict(data)
	if perr != nil {
		return perr
	}
	switch strings.ToLower(name) {
	case "info.plist":
		_, perr = parseInfoPlist(d)
	case "manifest.plist":
		_, perr = parseManifestPlist(d)
	case "status.plist":
		_, perr = parseStatusPlist(d)
	default:
		return fmt.Errorf("unknown plist %q", name)
	}
	if perr != nil {
		return perr
	}
	return nil
}
