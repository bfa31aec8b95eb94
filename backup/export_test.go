package backup

import "io"

// SetOpenBlob replaces how --deep opens blobs, to inject read errors.
func SetOpenBlob(o *VerifyOptions, f func(string) (io.ReadCloser, error)) { o.openBlob = f }
