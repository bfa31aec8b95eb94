package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mbaudit/mbaudit/backup/backuptest"
	"github.com/mbaudit/mbaudit/cmd"
)

// TestMain lets the test binary act as mbaudit inside the scripts, so they
// run the real main with real arguments, files and exit codes.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mbaudit": func() { os.Exit(cmd.Main(context.Background(), os.Args, cmd.OSEnv())) },
	})
}

// TestScripts runs the end-to-end scripts in testdata/script, one behaviour
// per script.
func TestScripts(t *testing.T) {
	samples, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("TZ", "UTC")
			env.Setenv("NO_COLOR", "")
			env.Setenv("SAMPLES", samples+"/testdata/backups")
			env.Setenv("SHARED", samples+"/../shared")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkbackup": cmdMkbackup,
		},
		Condition: func(cond string) (bool, error) {
			if cond == "shared" {
				_, err := os.Stat(samples + "/../shared/fixtures/real/mvt-ios14")
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// cmdMkbackup writes a backup with backuptest: mkbackup ROOT [word ...].
// Each word is one option (see mkbackupWords); the backup's folder is put
// in $BACKUP.
func cmdMkbackup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: mkbackup ROOT [option ...]")
	}
	var opts []backuptest.Option
	for _, w := range args[1:] {
		o, err := mkbackupWord(w)
		if err != nil {
			ts.Fatalf("mkbackup %s: %v", w, err)
		}
		opts = append(opts, o)
	}
	b, err := backuptest.Write(ts.MkAbs(args[0]), opts...)
	if err != nil {
		ts.Fatalf("mkbackup: %v", err)
	}
	ts.Setenv("BACKUP", b.Path)
}

var plistNames = map[string]backuptest.PlistName{
	"info": backuptest.InfoPlist, "manifest": backuptest.ManifestPlist, "status": backuptest.StatusPlist,
}

var recordKinds = map[string]backuptest.RecordKind{
	"undecodable": backuptest.RecordUndecodable, "unknown-flags": backuptest.RecordUnknownFlags,
	"dir-with-size": backuptest.RecordDirWithSize, "symlink-no-target": backuptest.RecordSymlinkNoTarget,
}

func mkbackupWord(w string) (backuptest.Option, error) {
	key, val, _ := strings.Cut(w, "=")
	num := func() (int, error) { return strconv.Atoi(val) }
	when := func() (time.Time, error) {
		if val == "now" {
			return time.Now(), nil
		}
		return time.Parse(time.RFC3339, val)
	}
	plist := func(f func(backuptest.PlistName) backuptest.Option) (backuptest.Option, error) {
		p, ok := plistNames[val]
		if !ok {
			return nil, fmt.Errorf("plist is info, manifest or status")
		}
		return f(p), nil
	}
	counted := map[string]func(int) backuptest.Option{
		"files": backuptest.Files, "snapshot-dir": backuptest.SnapshotDir, "invalid-ids": backuptest.InvalidFileIDs,
		"id-mismatch": backuptest.FileIDMismatch, "missing-blobs": backuptest.MissingBlobs,
		"size-mismatch": backuptest.SizeMismatch, "bad-padding": backuptest.BadPadding,
		"digest-mismatch": backuptest.DigestMismatch, "orphans": backuptest.Orphans, "missing-size": backuptest.MissingSize,
		"altered": backuptest.AlteredBlobs,
	}
	flags := map[string]func() backuptest.Option{
		"old-udid": backuptest.OldUDID, "legacy": backuptest.Legacy, "xml": backuptest.XMLPlists,
		"binary": backuptest.BinaryPlists, "encrypted": backuptest.Encrypted, "leftover-wal": backuptest.LeftoverWAL,
		"no-index": backuptest.NoIndex, "garbage-index": backuptest.GarbageIndex, "index-dir": backuptest.IndexIsDir,
		"no-files-table": backuptest.NoFilesTable, "corrupt-index": backuptest.CorruptIndexPages,
		"garbage-mbdb": backuptest.GarbageMbdb, "truncated-mbdb": backuptest.TruncatedMbdb,
		"keybag-missing": backuptest.KeybagMissing, "flag-mismatch": backuptest.EncryptionFlagMismatch,
		"udid-mismatch": backuptest.UDIDMismatch,
	}
	plists := map[string]func(backuptest.PlistName) backuptest.Option{
		"missing": backuptest.Missing, "empty": backuptest.Empty, "garbage": backuptest.Garbage,
		"truncated": backuptest.Truncated, "wrong-type": backuptest.WrongType, "wrong-top": backuptest.WrongTopLevel,
	}
	if f, ok := counted[key]; ok {
		n, err := num()
		return f(n), err
	}
	if f, ok := flags[key]; ok && val == "" {
		return f(), nil
	}
	if f, ok := plists[key]; ok {
		return plist(f)
	}
	switch key {
	case "seed":
		n, err := strconv.ParseInt(val, 10, 64)
		return backuptest.Seed(n), err
	case "udid":
		return backuptest.UDID(val), nil
	case "password":
		return backuptest.Password(val), nil
	case "copy":
		t, err := time.Parse("20060102-150405", val)
		return backuptest.DatedCopy(t), err
	case "device":
		p := strings.Split(val, ":")
		if len(p) != 4 {
			return nil, fmt.Errorf("device=NAME:TYPE:IOS:BUILD")
		}
		return backuptest.Device(p[0], p[1], p[2], p[3]), nil
	case "date":
		t, err := when()
		return backuptest.Date(t), err
	case "mtime":
		t, err := when()
		return backuptest.ModTime(t), err
	case "snapshot-state":
		return backuptest.SnapshotState(val), nil
	case "backup-state":
		return backuptest.BackupState(val), nil
	case "missing-column":
		return backuptest.MissingColumn(val), nil
	case "invalid-records":
		var kinds []backuptest.RecordKind
		for _, k := range strings.Split(val, ",") {
			kind, ok := recordKinds[k]
			if !ok {
				return nil, fmt.Errorf("unknown record kind %q", k)
			}
			kinds = append(kinds, kind)
		}
		return backuptest.InvalidRecords(kinds...), nil
	}
	return nil, fmt.Errorf("unknown option")
}
