package connector

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// awaitDrained waits, up to timeout, until the reader of f, if f is a
// pipe, has taken all that was written to it. In a container, standard
// output is a pipe that the runtime's log copier reads, and it may stop
// reading when the process exits: what the pipe still held then (up to
// its 64 KiB) would be lost from the container's log. A batch query's
// last results are written just before it exits.
func awaitDrained(f *os.File, timeout time.Duration) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for {
		var unread int // TIOCINQ is FIONREAD: the bytes in the pipe not read yet
		var ierr error
		if err := rc.Control(func(fd uintptr) { unread, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || ierr != nil {
			return
		}
		if unread == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
