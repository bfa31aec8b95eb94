package backuptest_test

import (
	"fmt"
	"os"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

func ExampleWrite() {
	root, err := os.MkdirTemp("", "backuptest-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)

	b, err := backuptest.Write(root, backuptest.Seed(3), backuptest.Files(50),
		backuptest.MissingBlobs(2), backuptest.SnapshotState("uploading"))
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b.Files), "files listed,", len(b.Missing), "of them without a blob")
	fmt.Println(b.Missing[0].Blob, b.ID == b.UDID)
	// Output:
	// 50 files listed, 2 of them without a blob
	// -1 true
}
