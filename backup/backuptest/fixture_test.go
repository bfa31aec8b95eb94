package backuptest

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"howett.net/plist"
	_ "modernc.org/sqlite"
)

// realBackup is the real iOS 14 backup shared beside the checkout, if present.
const realBackup = "../../../shared/fixtures/real/mvt-ios14/1cb128eafa77c5be74283e9a3a2130af36a3c059"

// TestArchiveMatchesRealRows re-encodes every row of a real Manifest.db from
// its decoded values and expects the very same bytes: the generated MBFile
// blobs are laid out the way the device lays them out.
func TestArchiveMatchesRealRows(t *testing.T) {
	t.Parallel()
	src := filepath.Join(realBackup, "Manifest.db")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("real backup not available (%v); skipping", err)
	}
	// The real database is in WAL mode: open it immutable so nothing is written beside it.
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT fileID, file FROM Files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var enc, generic mbEncoder
	n, bad := 0, 0
	for rows.Next() {
		var id string
		var blob []byte
		if err := rows.Scan(&id, &blob); err != nil {
			t.Fatal(err)
		}
		n++
		f, err := mbFileFromArchive(blob)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got := enc.archive(f)
		if !bytes.Equal(got, blob) || !bytes.Equal(generic.archiveGeneric(f), blob) {
			bad++
			if bad <= 3 {
				t.Errorf("%s: re-encoded MBFile differs (%d vs %d bytes)", id, len(got), len(blob))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d of %d rows differ", bad, n)
	}
	t.Logf("%d real rows re-encoded byte for byte", n)
}

// mbFileFromArchive decodes an archived MBFile with howett.net/plist.
func mbFileFromArchive(blob []byte) (*mbFile, error) {
	var a struct {
		Top     map[string]plist.UID `plist:"$top"`
		Objects []any                `plist:"$objects"`
	}
	if _, err := plist.Unmarshal(blob, &a); err != nil {
		return nil, err
	}
	root := int(a.Top["root"])
	m := a.Objects[root].(map[string]any)
	f := &mbFile{Root: root}
	num := func(k string) int64 {
		switch v := m[k].(type) {
		case uint64:
			return int64(v)
		case int64:
			return v
		}
		return 0
	}
	obj := func(k string) any {
		u, ok := m[k].(plist.UID)
		if !ok {
			return nil
		}
		return a.Objects[u]
	}
	f.RelativePath, _ = obj("RelativePath").(string)
	if t, ok := obj("Target").(string); ok {
		f.Target, f.HasTarget = t, true
	}
	if d, ok := obj("Digest").([]byte); ok {
		f.Digest = d
	}
	if ek, ok := obj("EncryptionKey").(map[string]any); ok {
		f.EncryptionKey, _ = ek["NS.data"].([]byte)
	}
	if x, ok := obj("ExtendedAttributes").([]byte); ok {
		f.ExtendedAttributes = x
	}
	f.Mode = num("Mode")
	f.InodeNumber = num("InodeNumber")
	f.UserID = num("UserID")
	f.GroupID = num("GroupID")
	f.LastModified = num("LastModified")
	f.LastStatusChange = num("LastStatusChange")
	f.Birth = num("Birth")
	if _, ok := m["Size"]; ok {
		f.Size = num("Size")
	} else {
		f.NoSize = true
	}
	f.ProtectionClass = num("ProtectionClass")
	f.Flags = num("Flags")
	return f, nil
}
