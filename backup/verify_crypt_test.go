package backup_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// listOne inspects one generated backup.
func listOne(t *testing.T, b *backuptest.Backup) *backup.Backup {
	t.Helper()
	bs, err := backup.List(context.Background(), []backup.Candidate{{Path: b.Path, Root: filepath.Dir(b.Path)}}, opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return bs[0]
}

// privateTemp points the temporary folder at a fresh one for the test, so
// that what verify leaves there can be seen.
func privateTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the temporary folder: %s", e.Name())
	}
}

// verifyWith lists and verifies one backup with a password ("" for none).
func verifyWith(t *testing.T, b *backuptest.Backup, password string, deep bool) (*backup.Backup, error) {
	t.Helper()
	got := listOne(t, b)
	opt := backup.VerifyOptions{Options: opts(), Deep: deep}
	if password != "" {
		opt.Password = backup.NewPassword([]byte(password))
	}
	_, err := backup.Verify(context.Background(), got, opt)
	return got, err
}

func TestEncryptedPassword(t *testing.T) {
	tmp := privateTemp(t)
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(120), backuptest.Encrypted())
	before := backuptest.HashTree(t, b.Path)

	t.Run("no password", func(t *testing.T) {
		got, err := verifyWith(t, b, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if codes(got) != "manifest-encrypted" || got.State != backup.StateOK {
			t.Fatalf("codes %q, state %s", codes(got), got.State)
		}
		f := got.Finding(backup.ManifestEncrypted)
		if !strings.Contains(f.Message, "no password was given") || !strings.Contains(f.Message, "not checked") {
			t.Errorf("message does not say what was not checked: %q", f.Message)
		}
		if got.Check.FilesChecked != 0 || got.Check.BlobsSeen != int64(len(b.Files)) || got.Check.Unlocked != nil {
			t.Errorf("counts %+v", got.Check)
		}
	})
	for _, deep := range []bool{false, true} {
		t.Run("right password deep="+map[bool]string{false: "no", true: "yes"}[deep], func(t *testing.T) {
			got, err := verifyWith(t, b, b.Password, deep)
			if err != nil {
				t.Fatal(err)
			}
			if codes(got) != "" || got.State != backup.StateOK {
				t.Fatalf("codes %q, state %s", codes(got), got.State)
			}
			c := got.Check
			if c.Unlocked == nil || c.RowsRead != int64(b.Rows) || c.FilesChecked != int64(len(b.Files)) || c.BytesListed != b.Bytes {
				t.Errorf("counts %+v, want %d rows, %d files, %d bytes", c.Counts, b.Rows, len(b.Files), b.Bytes)
			}
			if deep && c.BytesRead != b.BlobBytes {
				t.Errorf("--deep decrypted %d bytes, blobs hold %d", c.BytesRead, b.BlobBytes)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		secret := "not-" + b.Password
		got, err := verifyWith(t, b, secret, true)
		if !errors.Is(err, backup.ErrWrongPassword) {
			t.Fatalf("error %v, want a wrong password", err)
		}
		if want := "wrong password for " + b.DeviceName; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Error("the error holds the password")
		}
		// Reported as checked without the password.
		if codes(got) != "manifest-encrypted" || got.Check == nil || got.Check.BlobsSeen != int64(len(b.Files)) {
			t.Fatalf("codes %q, check %+v", codes(got), got.Check)
		}
		if msg := got.Finding(backup.ManifestEncrypted).Message; !strings.Contains(msg, "password given is wrong") {
			t.Errorf("message %q", msg)
		}
	})
	if after := backuptest.HashTree(t, b.Path); after != before {
		t.Error("verify changed the backup folder")
	}
	assertEmptyDir(t, tmp)
}

// TestEncryptedDefects: each defect verify finds in a plain backup is found
// the same way (code, count, state) in an encrypted one with the password.
func TestEncryptedDefects(t *testing.T) {
	privateTemp(t)
	tests := []struct {
		name  string
		opt   backuptest.Option
		code  backup.Code
		count int
		state backup.State
	}{
		{"missing", backuptest.MissingBlobs(3), backup.FileMissing, 3, backup.StateIncomplete},
		{"wrong length", backuptest.SizeMismatch(2), backup.FileSizeMismatch, 2, backup.StateOK},
		{"orphan", backuptest.Orphans(2), backup.FileOrphan, 2, backup.StateOK},
		{"invalid fileID", backuptest.InvalidFileIDs(2), backup.FileIDInvalid, 2, backup.StateCorrupt},
		{"undecodable record", backuptest.InvalidRecords(backuptest.RecordUndecodable), backup.RecordInvalid, 1, backup.StateCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, enc := range []bool{false, true} {
				o := []backuptest.Option{backuptest.Files(80), tc.opt}
				if enc {
					o = append(o, backuptest.Encrypted())
				}
				b := backuptest.MustWrite(t, t.TempDir(), o...)
				for _, deep := range []bool{false, true} {
					got, err := verifyWith(t, b, b.Password, deep)
					if err != nil {
						t.Fatal(err)
					}
					f := got.Finding(tc.code)
					if codes(got) != string(tc.code) || f.Count != tc.count || got.State != tc.state {
						t.Errorf("encrypted %v deep %v: codes %q, state %s, want %d %s (%s)", enc, deep, codes(got), got.State, tc.count, tc.code, tc.state)
					}
				}
			}
		})
	}
}

func TestEncryptedContent(t *testing.T) {
	privateTemp(t)
	t.Run("altered", func(t *testing.T) {
		b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(80), backuptest.AlteredBlobs(2))
		// The lengths are right: only decrypting shows it.
		got, err := verifyWith(t, b, b.Password, false)
		if err != nil || codes(got) != "" {
			t.Fatalf("without --deep: %v, codes %q", err, codes(got))
		}
		got, err = verifyWith(t, b, b.Password, true)
		if err != nil {
			t.Fatal(err)
		}
		f := got.Finding(backup.FilePaddingInvalid)
		if codes(got) != "file-padding-invalid" || f.Count != 2 || got.State != backup.StateCorrupt {
			t.Fatalf("codes %q, state %s", codes(got), got.State)
		}
		for i, ex := range f.Examples {
			if want := b.Altered[i].Name(); !strings.Contains(strings.Join(f.Examples, "\n"), want) {
				t.Errorf("example %d %q: want %s named", i, ex, want)
			}
		}
	})
	t.Run("bad padding length", func(t *testing.T) {
		b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(80), backuptest.BadPadding(2))
		for _, deep := range []bool{false, true} {
			got, err := verifyWith(t, b, b.Password, deep)
			if err != nil {
				t.Fatal(err)
			}
			// Counted once, by length, whether or not it is decrypted.
			if f := got.Finding(backup.FilePaddingInvalid); codes(got) != "file-padding-invalid" || f.Count != 2 {
				t.Fatalf("deep %v: codes %q", deep, codes(got))
			}
		}
	})
}

func TestEncryptedLegacy(t *testing.T) {
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(80), backuptest.Legacy(), backuptest.Encrypted(), backuptest.AlteredBlobs(1))
	// Without the password: lengths only, and the digests (of the
	// ciphertext) match, so the altered blob goes unseen.
	got, err := verifyWith(t, b, "", true)
	if err != nil || codes(got) != "" || got.Check.FilesChecked != int64(len(b.Files)) {
		t.Fatalf("without password: %v, codes %q, %+v", err, codes(got), got.Check)
	}
	got, err = verifyWith(t, b, b.Password, true)
	if err != nil {
		t.Fatal(err)
	}
	if codes(got) != "file-padding-invalid" || got.Check.Unlocked == nil {
		t.Fatalf("with password: codes %q, %+v", codes(got), got.Check)
	}
	if _, err := verifyWith(t, b, "wrong", true); !errors.Is(err, backup.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestEncryptedKeyReused: dated copies share their keybag, so the key is
// derived once.
func TestEncryptedKeyReused(t *testing.T) {
	root := t.TempDir()
	o := []backuptest.Option{backuptest.Seed(5), backuptest.Files(20), backuptest.KeybagRounds(2000, 10)}
	b1 := backuptest.MustWrite(t, root, o...)
	backuptest.MustWrite(t, root, append(o, backuptest.DatedCopy(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)))...)
	bs, err := backup.List(context.Background(), []backup.Candidate{
		{Path: b1.Path, Root: root}, {Path: b1.Path + "-20250102-030405", Root: root}}, opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := backup.NewPassword([]byte(b1.Password))
	var derived []time.Duration
	for _, b := range bs {
		c, err := backup.Verify(context.Background(), b, backup.VerifyOptions{Options: opts(), Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		if c.Unlocked == nil || b.State != backup.StateOK {
			t.Fatalf("%s: not unlocked (%q)", b.ID, codes(b))
		}
		derived = append(derived, c.Unlocked.Derive)
	}
	if derived[0] == 0 || derived[1] != 0 {
		t.Errorf("derivation times %v: want the second reused", derived)
	}
}

// TestEncryptedInterrupted: cancelled while blobs are decrypted, verify
// returns the cancellation and leaves nothing in the temporary folder.
func TestEncryptedInterrupted(t *testing.T) {
	tmp := privateTemp(t)
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(200), backuptest.Encrypted())
	got := listOne(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt := backup.VerifyOptions{Options: opts(), Deep: true, Password: backup.NewPassword([]byte(b.Password))}
	var sawTemp bool
	backup.SetOpenBlob(&opt, func(p string) (io.ReadCloser, error) {
		if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
			sawTemp = true
		}
		cancel()
		return os.Open(p)
	})
	_, err := backup.Verify(ctx, got, opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want cancelled", err)
	}
	if !sawTemp {
		t.Fatal("the decrypted index was not in the temporary folder while blobs were read")
	}
	assertEmptyDir(t, tmp)
}

// rewriteManifestPlist changes one key of a generated backup's Manifest.plist.
func rewriteManifestPlist(t *testing.T, b *backuptest.Backup, key string, change func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(b.Path, "Manifest.plist")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := plist.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = change(m[key].([]byte))
	if data, err = plist.Marshal(m, plist.BinaryFormat); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A keybag that cannot serve the right password is keybag-missing: the
// index can never be decrypted with it.
func TestEncryptedKeybagUnusable(t *testing.T) {
	privateTemp(t)
	for name, tc := range map[string]struct {
		key    string
		change func([]byte) []byte
		msg    string
	}{
		"keybag truncated":            {"BackupKeyBag", func(k []byte) []byte { return k[:len(k)-7] }, "cannot be read"},
		"manifest key not unwrapping": {"ManifestKey", func(k []byte) []byte { k[20] ^= 1; return k }, "does not unwrap"},
	} {
		t.Run(name, func(t *testing.T) {
			b := backuptest.MustWrite(t, t.TempDir(), backuptest.Files(20), backuptest.Encrypted())
			rewriteManifestPlist(t, b, tc.key, tc.change)
			got, err := verifyWith(t, b, b.Password, true)
			if err != nil {
				t.Fatal(err)
			}
			f := got.Finding(backup.KeybagMissing)
			if codes(got) != "keybag-missing manifest-encrypted" || got.State != backup.StateCorrupt || !strings.Contains(f.Message, tc.msg) {
				t.Fatalf("codes %q, state %s, message %q", codes(got), got.State, f.Message)
			}
		})
	}
}

// usage reads an encrypted index with the password: the same files and
// listed bytes as the plain backup from the same seed.
func TestEncryptedBreakdown(t *testing.T) {
	tmp := privateTemp(t)
	o := []backuptest.Option{backuptest.Seed(61), backuptest.Files(150)}
	plain := listOne(t, backuptest.MustWrite(t, t.TempDir(), o...))
	encB := backuptest.MustWrite(t, t.TempDir(), append(o, backuptest.Encrypted())...)
	enc := listOne(t, encB)
	want, err := backup.Breakdown(context.Background(), plain, backup.SpaceOptions{By: backup.ByApp})
	if err != nil || want.Unread != "" {
		t.Fatalf("plain: %v %q", err, want.Unread)
	}
	s, err := backup.Breakdown(context.Background(), enc, backup.SpaceOptions{By: backup.ByApp})
	if err != nil || s.Unread == "" {
		t.Fatalf("encrypted without password: %v, unread %q", err, s.Unread)
	}
	s, err = backup.Breakdown(context.Background(), enc, backup.SpaceOptions{By: backup.ByApp, Password: backup.NewPassword([]byte(encB.Password))})
	if err != nil || s.Unread != "" {
		t.Fatalf("with password: %v %q", err, s.Unread)
	}
	if s.Files != want.Files || s.Bytes != want.Bytes || len(s.Groups) != len(want.Groups) || s.DiskBytes <= want.DiskBytes {
		t.Errorf("encrypted: %d files, %d bytes, %d groups, %d on disk; plain: %d, %d, %d, %d",
			s.Files, s.Bytes, len(s.Groups), s.DiskBytes, want.Files, want.Bytes, len(want.Groups), want.DiskBytes)
	}
	s, err = backup.Breakdown(context.Background(), enc, backup.SpaceOptions{By: backup.ByApp, Password: backup.NewPassword([]byte("nope"))})
	if !errors.Is(err, backup.ErrWrongPassword) || s == nil || s.Unread == "" {
		t.Fatalf("wrong password: %v, %+v", err, s)
	}
	assertEmptyDir(t, tmp)
}
