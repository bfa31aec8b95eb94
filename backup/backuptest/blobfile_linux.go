//go:build linux

package backuptest

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// writeBlobFile creates path holding data with modification and access time
// t. Raw system calls save os.File's poller set-up and a second path lookup
// for the times, which matters at half a million files.
func writeBlobFile(path string, data []byte, t time.Time) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Close(fd)
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[n:]
	}
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	// utimensat(fd, NULL, times, 0) is futimens(fd, times).
	if _, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		syscall.Close(fd)
		return &os.PathError{Op: "futimens", Path: path, Err: e}
	}
	if err := syscall.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}
