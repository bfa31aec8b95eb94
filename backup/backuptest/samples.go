package backuptest

import (
	"fmt"
	"time"
)

// Samples writes the small sample set `make demo` runs on into root: six
// backups of five devices, tiny (10-12 files of at most 512 bytes each, about 300 KB in all), the
// same bytes on every run:
//
//   - Ana's iPhone (iPhone14,5, iOS 17.5.1): a healthy backup, and a dated
//     copy of an older one (UDID-20240502-101533), also healthy;
//   - Ben's iPad (iPad13,1, iOS 17.4.1): incomplete, with no Status.plist
//     and three blobs missing (nothing a modification time can change);
//   - Chloé's iPhone (iPhone15,2, iOS 17.5.1): encrypted, healthy;
//   - Carla's iPhone (iPhone12,1, iOS 16.7.8): corrupt, Manifest.db garbage;
//   - Dan's iPhone (iPhone8,1, iOS 9.3.5): a healthy legacy (Manifest.mbdb) backup.
//
// Git keeps no empty folders, so a committed copy loses the empty ones of
// the 256 prefix folders; that is how backups copied by some tools look too.
func Samples(root string) error {
	small := FileSizes(0, 512)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	ana := Device("Ana's iPhone", "iPhone14,5", "17.5.1", "21F90")
	sets := [][]Option{
		{Seed(101), ana, Files(12), small, Date(at("2024-06-14T19:42:10Z"))},
		{Seed(101), ana, Files(10), small, Date(at("2024-04-28T20:11:05Z")),
			DatedCopy(time.Date(2024, 5, 2, 10, 15, 33, 0, time.UTC))},
		{Seed(202), Device("Ben's iPad", "iPad13,1", "17.4.1", "21E236"), Files(12), small,
			Date(at("2024-06-10T07:03:44Z")), Missing(StatusPlist), MissingBlobs(3)},
		{Seed(303), Device("Chloé's iPhone", "iPhone15,2", "17.5.1", "21F90"), Files(10), small,
			Date(at("2024-06-12T22:30:00Z")), Encrypted()},
		{Seed(404), Device("Carla's iPhone", "iPhone12,1", "16.7.8", "20H343"), Files(10), small,
			Date(at("2024-03-02T18:20:51Z")), GarbageIndex()},
		{Seed(505), Device("Dan's iPhone", "iPhone8,1", "9.3.5", "13G36"), Files(12), small,
			Date(at("2019-11-23T09:12:40Z")), Legacy()},
	}
	for _, opts := range sets {
		if _, err := Write(root, opts...); err != nil {
			return fmt.Errorf("writing samples: %w", err)
		}
	}
	return nil
}
