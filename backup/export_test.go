package backup

import (
	"io"
	"testing"
)

// HashTree is treeHash for the external test package.
func HashTree(t *testing.T, dir string) string { return treeHash(t, dir) }

// SetOpenBlob replaces how --deep opens blobs, to inject read errors.
func SetOpenBlob(o *VerifyOptions, f func(string) (io.ReadCloser, error)) { o.openBlob = f }
