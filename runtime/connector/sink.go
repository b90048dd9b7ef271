package connector

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// NewEncoder returns the encoder of a format for the given columns. Avro
// and Protobuf records are plain: without a registry's header.
func NewEncoder(f v1alpha1.Format, cols []value.Column) Encoder {
	names := value.Names(cols)
	switch f {
	case v1alpha1.FormatCSV:
		return format.NewCSVEncoder(names)
	case v1alpha1.FormatAvro:
		return format.NewAvroEncoder(cols, nil)
	case v1alpha1.FormatProtobuf:
		return format.NewProtobufEncoder(cols, nil)
	}
	return format.NewJSONEncoder(names)
}

// WriterSink encodes rows onto a writer: standard output or a file. Every
// batch is written through to the writer before Write returns, so that an
// acknowledged batch is never lost in a buffer, and a reader of standard
// output sees results as they come.
type WriterSink struct {
	out    io.Writer
	w      *bufio.Writer
	closer io.Closer
	enc    Encoder
	buf    []byte
	header bool
	// file, for a file sink that can resume, is the file, and written
	// how many bytes it holds.
	file    *os.File
	written int64
}

// NewWriterSink returns a sink writing to w; closer, if not nil, is closed with it.
func NewWriterSink(w io.Writer, closer io.Closer, enc Encoder) *WriterSink {
	return &WriterSink{out: w, w: bufio.NewWriterSize(w, 256<<10), closer: closer, enc: enc}
}

// OpenStdout returns a sink that writes to standard output.
func OpenStdout(enc Encoder) *WriterSink { return NewWriterSink(os.Stdout, nil, enc) }

// OpenFileSink creates or truncates the file of a file sink. A resumable
// one (a query with spec.state) leaves the file as it is until Resume says
// where to write on from.
func OpenFileSink(spec *v1alpha1.FileSink, enc Encoder, resumable bool) (*WriterSink, error) {
	if !resumable {
		f, err := os.Create(spec.Path)
		if err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
		return NewWriterSink(f, f, enc), nil
	}
	f, err := os.OpenFile(spec.Path, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := NewWriterSink(f, f, enc)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		// A pipe or a device cannot be cut back: it is written on, as
		// standard output is.
		s.file = f
	}
	return s, nil
}

// ResumableSink is a sink whose output can be cut back to a position. With
// spec.state a checkpoint holds the sink's position, and a restart cuts
// off what was written after it, which the restored state writes again:
// the output then holds each result once, however the engine stopped.
type ResumableSink interface {
	Sink
	// Position flushes the output and returns its length.
	Position() (int64, error)
	// Sync makes the output durable at least up to the last Position. It
	// may be called while the sink writes on.
	Sync() error
	// Resume makes the output pos long, cutting off what follows, and
	// writes on from there; 0 starts it over, and a negative pos (a
	// checkpoint without a position) keeps it all and appends.
	Resume(pos int64) error
	// Resumable reports whether the sink was opened to resume.
	Resumable() bool
}

// Resumable implements ResumableSink: a file sink opened for spec.state.
func (s *WriterSink) Resumable() bool { return s.file != nil }

// Position implements ResumableSink.
func (s *WriterSink) Position() (int64, error) {
	if err := s.w.Flush(); err != nil {
		return 0, err
	}
	return s.written, nil
}

// Sync implements ResumableSink.
func (s *WriterSink) Sync() error {
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("sink: syncing %s: %w", s.file.Name(), err)
	}
	return nil
}

// Resume implements ResumableSink.
func (s *WriterSink) Resume(pos int64) error {
	fi, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	switch {
	case pos < 0:
		pos = fi.Size()
	case pos > fi.Size():
		return fmt.Errorf("sink: %s holds %d bytes, fewer than the %d the checkpoint's results had filled: it was cut or replaced since; move it away and set spec.state.reset, or restore it", s.file.Name(), fi.Size(), pos)
	}
	if err := s.file.Truncate(pos); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if _, err := s.file.Seek(pos, io.SeekStart); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s.written, s.header = pos, pos > 0
	return nil
}

// Write implements Sink. A failed write discards what this batch left in the
// buffer, so that a retry starts clean: a bufio.Writer otherwise repeats its
// first error forever. What reached the writer before the failure stays
// there, so a retried batch may appear partly twice: the sink is
// at-least-once.
func (s *WriterSink) Write(_ context.Context, b *message.Batch) error {
	s.buf = s.buf[:0]
	if !s.header {
		s.buf = s.enc.Header(s.buf)
	}
	for _, row := range b.Rows {
		s.buf = s.enc.Encode(s.buf, row)
	}
	_, err := s.w.Write(s.buf)
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		s.w.Reset(s.out)
		return err
	}
	s.header = true
	s.written += int64(len(s.buf))
	return nil
}

// Flush implements Sink.
func (s *WriterSink) Flush(context.Context) error { return s.w.Flush() }

// Close implements Sink.
func (s *WriterSink) Close() error { return closeWriter(s.w, s.out, s.closer) }

// drainTimeout is how long a sink writing to a pipe waits, as it closes,
// for the pipe's reader to take what it wrote (awaitDrained).
const drainTimeout = 5 * time.Second

// closeWriter flushes w, which writes to out, waits for out's reader if
// out is a pipe (awaitDrained), and closes closer, if not nil.
func closeWriter(w *bufio.Writer, out io.Writer, closer io.Closer) error {
	err := w.Flush()
	if f, ok := out.(*os.File); ok && err == nil {
		awaitDrained(f, drainTimeout)
	}
	if closer != nil {
		if cerr := closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NullSink discards rows.
type NullSink struct{}

// Write implements Sink.
func (NullSink) Write(context.Context, *message.Batch) error { return nil }

// Flush implements Sink.
func (NullSink) Flush(context.Context) error { return nil }

// Close implements Sink.
func (NullSink) Close() error { return nil }

// DeadLetterEntry is one line of a dead-letter sink. Payload holds the record as
// text when it is valid UTF-8; otherwise PayloadBase64 holds its bytes.
type DeadLetterEntry struct {
	Time          time.Time           `json:"time"`
	CorrelationID string              `json:"correlation_id"`
	Stage         string              `json:"stage"`
	Error         string              `json:"error"`
	Source        message.Coordinates `json:"source"`
	Payload       *string             `json:"payload,omitempty"`
	PayloadBase64 string              `json:"payload_base64,omitempty"`
	Traceparent   string              `json:"traceparent,omitempty"`
	Statement     string              `json:"statement,omitempty"`
}

// DeadLetterWriter writes error events as JSON lines.
type DeadLetterWriter struct {
	out    io.Writer
	w      *bufio.Writer
	closer io.Closer
	now    func() time.Time
}

// NewDeadLetterWriter writes entries to w; closer, if not nil, is closed with it.
func NewDeadLetterWriter(w io.Writer, closer io.Closer, now func() time.Time) *DeadLetterWriter {
	return &DeadLetterWriter{out: w, w: bufio.NewWriter(w), closer: closer, now: now}
}

// openDeadLetter opens a stdout, file or null dead-letter sink.
func openDeadLetter(env SinkEnv) (DeadLetterSink, error) {
	switch spec := env.Spec; {
	case spec.File != nil:
		f, err := os.Create(spec.File.Path)
		if err != nil {
			return nil, fmt.Errorf("dead-letter sink: %w", err)
		}
		return NewDeadLetterWriter(f, f, time.Now), nil
	case spec.Null != nil:
		return NewDeadLetterWriter(io.Discard, nil, time.Now), nil
	}
	return NewDeadLetterWriter(os.Stdout, nil, time.Now), nil
}

// Write writes events and flushes them, so that an entry is durable before the
// record it stands for counts as handled.
func (d *DeadLetterWriter) Write(_ context.Context, events []message.ErrorEvent) error {
	now := d.now().UTC()
	for _, ev := range events {
		e := DeadLetterEntry{
			Time: now, CorrelationID: ev.CorrelationID, Stage: ev.Stage, Error: ev.Error,
			Source: ev.Source, Traceparent: ev.Traceparent, Statement: ev.Statement,
		}
		if utf8.Valid(ev.Payload) {
			p := string(ev.Payload)
			e.Payload = &p
		} else {
			e.PayloadBase64 = base64.StdEncoding.EncodeToString(ev.Payload)
		}
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := d.w.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return d.w.Flush()
}

// Close flushes and closes the writer.
func (d *DeadLetterWriter) Close() error { return closeWriter(d.w, d.out, d.closer) }
