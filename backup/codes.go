package backup

// Code names a kind of finding. The names are part of the command-line
// contract: extend the list, never rename an entry.
type Code string

// Per-backup finding codes.
const (
	InfoPlistMissing       Code = "info-plist-missing"
	InfoPlistInvalid       Code = "info-plist-invalid"
	ManifestPlistMissing   Code = "manifest-plist-missing"
	ManifestPlistInvalid   Code = "manifest-plist-invalid"
	StatusPlistMissing     Code = "status-plist-missing"
	StatusPlistInvalid     Code = "status-plist-invalid"
	SnapshotUnfinished     Code = "snapshot-unfinished"
	BackupStateNotNew      Code = "backup-state-not-new"
	SnapshotDirPresent     Code = "snapshot-dir-present"
	ManifestDBMissing      Code = "manifest-db-missing"
	ManifestDBInvalid      Code = "manifest-db-invalid"
	ManifestMbdbInvalid    Code = "manifest-mbdb-invalid"
	ManifestEncrypted      Code = "manifest-encrypted"
	KeybagMissing          Code = "keybag-missing"
	EncryptionFlagMismatch Code = "encryption-flag-mismatch"
	RecordInvalid          Code = "record-invalid"
	FileIDInvalid          Code = "file-id-invalid"
	FileIDMismatch         Code = "file-id-mismatch"
	FileMissing            Code = "file-missing"
	FileSizeMismatch       Code = "file-size-mismatch"
	FilePaddingInvalid     Code = "file-padding-invalid"
	FileDigestMismatch     Code = "file-digest-mismatch"
	FileUnreadable         Code = "file-unreadable"
	FileOrphan             Code = "file-orphan"
	UDIDMismatch           Code = "udid-mismatch"
	// BackupUnreadable is mbaudit's extension of the contract's table: a
	// plist, the index or a folder of the backup could not be read at all
	// (permission denied, I/O error).
	BackupUnreadable Code = "backup-unreadable"
)

// Policy finding codes (report and prune).
const (
	BackupStale     Code = "backup-stale"
	BackupOversized Code = "backup-oversized"
	LowFreeSpace    Code = "low-free-space"
)

type codeInfo struct {
	severity Severity
	state    State // the state an occurrence puts the backup in; "" for none
}

var codes = map[Code]codeInfo{
	InfoPlistMissing:       {SeverityError, StateIncomplete},
	InfoPlistInvalid:       {SeverityError, StateCorrupt},
	ManifestPlistMissing:   {SeverityError, StateIncomplete},
	ManifestPlistInvalid:   {SeverityError, StateCorrupt},
	StatusPlistMissing:     {SeverityError, StateIncomplete},
	StatusPlistInvalid:     {SeverityError, StateCorrupt},
	SnapshotUnfinished:     {SeverityError, StateIncomplete},
	BackupStateNotNew:      {SeverityError, StateIncomplete},
	SnapshotDirPresent:     {SeverityError, StateIncomplete},
	ManifestDBMissing:      {SeverityError, StateIncomplete},
	ManifestDBInvalid:      {SeverityError, StateCorrupt},
	ManifestMbdbInvalid:    {SeverityError, StateCorrupt},
	ManifestEncrypted:      {SeverityInfo, ""},
	KeybagMissing:          {SeverityError, StateCorrupt},
	EncryptionFlagMismatch: {SeverityWarning, ""},
	RecordInvalid:          {SeverityError, StateCorrupt},
	FileIDInvalid:          {SeverityError, StateCorrupt},
	FileIDMismatch:         {SeverityWarning, ""},
	FileMissing:            {SeverityError, StateIncomplete},
	FileSizeMismatch:       {SeverityWarning, ""},
	FilePaddingInvalid:     {SeverityError, StateCorrupt},
	FileDigestMismatch:     {SeverityError, StateCorrupt},
	FileUnreadable:         {SeverityError, StateUnreadable},
	FileOrphan:             {SeverityWarning, ""},
	UDIDMismatch:           {SeverityWarning, ""},
	BackupUnreadable:       {SeverityError, StateUnreadable},
	BackupStale:            {SeverityWarning, ""},
	BackupOversized:        {SeverityWarning, ""},
	LowFreeSpace:           {SeverityWarning, ""},
}

// Codes lists every finding code mbaudit knows.
func Codes() []Code {
	out := make([]Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// Severity is the code's fixed severity.
func (c Code) Severity() Severity {
	if i, ok := codes[c]; ok {
		return i.severity
	}
	return SeverityError
}

// State is the state an occurrence of the code puts a backup in, or "" when
// the code does not change the state.
func (c Code) State() State { return codes[c].state }
