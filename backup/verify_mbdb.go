package backup

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/mbaudit/mbaudit/backup/manifest"
)

// verifyMbdb verifies a legacy backup (iOS 4 to 9): the Manifest.mbdb
// records against the blobs stored flat in the backup folder.
func (v *verifier) verifyMbdb(ctx context.Context) error {
	path := filepath.Join(v.b.Path, "Manifest.mbdb")
	if v.opt.Deep {
		v.digests = map[[20]byte][20]byte{}
	}
	g, gctx := errgroup.WithContext(ctx)
	var folders [256]folderListing
	g.Go(func() error { return v.listFolders(gctx, &folders) })
	g.Go(func() error {
		err := scanMbdbFile(gctx, path, v.mbdbRecord)
		if err != nil && gctx.Err() == nil {
			var me *manifest.MbdbError
			if errors.As(err, &me) || errors.Is(err, manifest.ErrNotMbdb) {
				v.b.Addf(ManifestMbdbInvalid, "Manifest.mbdb does not parse to its last byte: %s", shortErr(err))
			} else {
				v.b.Addf(BackupUnreadable, "could not read Manifest.mbdb: %s", describeIOError(err))
			}
			return nil
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if v.b.Has(ManifestMbdbInvalid) || v.b.Has(BackupUnreadable) {
		return nil // an index that does not parse says nothing about the files
	}
	v.merge(&folders)
	deep := v.deep
	if v.keys != nil && v.opt.Deep {
		deep = func(ctx context.Context) error { return v.deepDecrypt(ctx, v.mbdbDeepRows(path)) }
	}
	if err := deep(ctx); err != nil {
		return err
	}
	// Names for the examples: a second pass over the records, which are
	// few in a legacy backup, rather than keeping every path in memory.
	v.nameExamples(func(ids map[string]bool) map[string]string {
		names := map[string]string{}
		_ = scanMbdbFile(ctx, path, func(r *manifest.MbdbRecord) error {
			id := fileIDOf([]byte(r.Domain), []byte(r.Path))
			if h := hex.EncodeToString(id[:]); ids[h] {
				names[h] = r.Domain + "/" + r.Path
			}
			return nil
		})
		return names
	})
	return nil
}

// scanMbdbFile streams the records of a Manifest.mbdb file, checking the
// context every few thousand records.
func scanMbdbFile(ctx context.Context, path string, fn func(*manifest.MbdbRecord) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n := 0
	_, err = manifest.ScanMbdb(bufio.NewReaderSize(f, 1<<20), func(r *manifest.MbdbRecord) error {
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		return fn(r)
	})
	return err
}

// mbdbRecord checks one legacy record. The file type comes from the mode:
// the format has no flags column.
func (v *verifier) mbdbRecord(r *manifest.MbdbRecord) error {
	v.counts.RowsRead++
	where := func() string { return r.Domain + "/" + r.Path }
	var flags int64
	switch r.Mode & 0xF000 {
	case 0x8000:
		flags = 1
	case 0x4000:
		flags = 2
	case 0xA000:
		flags = 4
	default:
		v.addRecord(RecordInvalid, fmt.Sprintf("mode %#o is not a file, folder or link", r.Mode), where())
		return nil
	}
	switch {
	case flags != 1 && r.Size != 0:
		v.addRecord(RecordInvalid, "a folder or link with a non-zero size", where())
	case flags == 4 && r.Target == "":
		v.addRecord(RecordInvalid, "a symbolic link without a target", where())
	}
	if flags != 1 {
		return nil
	}
	v.counts.FilesListed++
	size := int64(r.Size)
	if size < 0 {
		v.addRecord(RecordInvalid, "an impossible size", where())
		size = -1
	} else {
		v.counts.BytesListed += size
	}
	id := fileIDOf([]byte(r.Domain), []byte(r.Path))
	v.buckets[id[0]] = append(v.buckets[id[0]], listed{id: id, size: size})
	if v.digests != nil && len(r.DataHash) == 20 {
		v.digests[id] = [20]byte(r.DataHash)
	}
	return nil
}
