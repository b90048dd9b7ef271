package connector

import (
	"bytes"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWriterSinkCloseAwaitsPipeReader: a sink writing to a pipe returns
// from Close only once the pipe's reader, slow here, has taken all it
// wrote (as a container's log copier must before the engine exits, or the
// last results are lost from the log); with no reader it gives up after
// its timeout.
func TestWriterSinkCloseAwaitsPipeReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	want := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 160 KB, more than a pipe holds
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				return
			}
			time.Sleep(time.Millisecond) // slower than the writer
		}
	}()
	s := NewWriterSink(w, nil, nil)
	if _, err := s.w.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	unread, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
	if err != nil || unread != 0 {
		t.Errorf("Close returned with %d bytes (%v) still in the pipe; want the reader to have taken them all", unread, err)
	}
	w.Close()
	if all := <-got; !bytes.Equal(all, want) {
		t.Errorf("the reader took %d bytes; want %d", len(all), len(want))
	}

	// No reader: Close gives up after its timeout.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	if _, err := w2.Write([]byte("left unread")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	awaitDrained(w2, 50*time.Millisecond)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("returned after %s with bytes unread; want it to wait its timeout", waited)
	}
}
