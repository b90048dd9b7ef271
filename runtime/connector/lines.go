package connector

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/format"
	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// decoder is what the line reader needs of a format.
type decoder interface {
	Decode(line []byte, row value.Row) error
}

// slabSize is the size of the memory lines are copied into. Decoded strings
// point into a slab, which is never reused, so the garbage collector frees it
// once no row references it.
const slabSize = 64 << 10

// LineReader reads records, one per line, from a file or a stream.
type LineReader struct {
	origin *message.Origin
	// skipThrough is the last line a restored state holds: lines up to it
	// are read past, not decoded (SkipThrough).
	skipThrough int64
	r           io.Reader
	closer      io.Closer
	br          *bufio.Reader
	dec         decoder
	csv         *format.CSVDecoder
	maxBytes    int
	// stream marks input that may block (a pipe or terminal): a partly filled
	// batch is sent as soon as no more input is buffered, rather than waiting.
	stream bool
	line   int64
	slab   []byte
	long   []byte // a line longer than the bufio buffer, being assembled
	// stop interrupts a blocked read of a stream when the context ends.
	stop func() bool
}

// NewLineReader reads records in format f from r. name is the file name for
// coordinates; cols the schema.
func NewLineReader(source, name string, r io.Reader, f v1alpha1.Format, cols []value.Column, maxBytes int, stream bool) *LineReader {
	if maxBytes <= 0 {
		maxBytes = v1alpha1.DefaultMaxRecordBytes
	}
	lr := &LineReader{
		origin:   &message.Origin{Source: source, File: name},
		r:        r,
		br:       bufio.NewReaderSize(r, 64<<10),
		maxBytes: maxBytes,
		stream:   stream,
	}
	if c, ok := r.(io.Closer); ok {
		lr.closer = c
	}
	if f == v1alpha1.FormatCSV {
		lr.csv = format.NewCSVDecoder(cols)
		lr.dec = lr.csv
	} else {
		lr.dec = format.NewJSONDecoder(cols)
	}
	return lr
}

// CheckSchema makes the reader of a JSON source check each record against
// jsonSchema (spec.sources[].jsonSchema), if it is set.
func (lr *LineReader) CheckSchema(jsonSchema string) error {
	d, ok := lr.dec.(*format.JSONDecoder)
	if jsonSchema == "" || !ok {
		return nil
	}
	s, err := format.CompileJSONSchema(jsonSchema)
	if err != nil {
		return fmt.Errorf("source %s: jsonSchema: %w", lr.origin.Source, err)
	}
	d.CheckSchema(s)
	return nil
}

// Prune makes the reader decode only the columns read says (nil: all), of
// a JSON source; the others are NULL. CSV fields are all split, and
// converted as the query reads them or not.
func (lr *LineReader) Prune(read []bool) {
	if p, ok := lr.dec.(format.Pruner); ok && read != nil {
		p.Prune(read)
	}
}

// OpenFile opens a file source.
func OpenFile(source string, spec *v1alpha1.FileSource, f v1alpha1.Format, cols []value.Column, maxBytes int) (*LineReader, error) {
	file, err := os.Open(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	return NewLineReader(source, spec.Path, file, f, cols, maxBytes, !info.Mode().IsRegular()), nil
}

// OpenStdin opens standard input as a source. Where standard input is a pipe
// or terminal it is switched to non-blocking mode, so that a stop signal can
// interrupt a read that waits for input.
func OpenStdin(source string, f v1alpha1.Format, cols []value.Column, maxBytes int) *LineReader {
	stdin := os.Stdin
	info, err := stdin.Stat()
	stream := err != nil || !info.Mode().IsRegular()
	restore := false
	if stream && syscall.SetNonblock(0, true) == nil {
		stdin = os.NewFile(0, "/dev/stdin")
		restore = true
	}
	lr := NewLineReader(source, "-", stdin, f, cols, maxBytes, stream)
	// Standard input is never closed, but left blocking as it was found: a
	// terminal or pipe shares that mode with the parent shell.
	lr.closer = closerFunc(func() error {
		if restore {
			return syscall.SetNonblock(0, false)
		}
		return nil
	})
	return lr
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Origin implements Reader.
func (lr *LineReader) Origin() *message.Origin { return lr.origin }

// SkipThrough implements Seeker: lines up to offset are read past, a CSV
// header still read.
func (lr *LineReader) SkipThrough(offset int64) { lr.skipThrough = offset }

// Close implements Reader.
func (lr *LineReader) Close() error {
	if lr.closer != nil {
		return lr.closer.Close()
	}
	return nil
}

// Read implements Reader. linger does not apply: a file never waits, and a
// stream sends what it has as soon as it would wait.
func (lr *LineReader) Read(ctx context.Context, b *message.Batch, max int, _ time.Duration, errs *message.ErrorBatch) error {
	if lr.stream && lr.stop == nil {
		if d, ok := lr.r.(interface{ SetReadDeadline(time.Time) error }); ok {
			lr.stop = context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Now()) })
		}
	}
	// Failed records count toward the batch too, so that a run of bad lines
	// cannot pile up error events (and their payloads) in one batch.
	for b.Len()+errs.Records < max {
		if lr.stream && lr.br.Buffered() == 0 && (b.Len() > 0 || len(errs.Events) > 0) {
			return nil
		}
		raw, tooLong, err := lr.readLine()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return io.EOF // stopped while waiting for input
			}
			if err == io.EOF && raw == nil {
				return io.EOF
			}
			if err != io.EOF {
				return fmt.Errorf("source %s: reading %s after line %d: %w", lr.origin.Source, lr.origin.File, lr.line, err)
			}
		}
		lr.line++
		if lr.line <= lr.skipThrough && (lr.csv == nil || lr.csv.HasHeader()) {
			if err == io.EOF {
				return io.EOF
			}
			continue // held by a restored state
		}
		b.LastOffset = lr.line
		if tooLong > 0 {
			lr.fail(b, errs, raw, fmt.Errorf("record is %d bytes, more than maxRecordBytes %d", tooLong, lr.maxBytes))
		} else if herr := lr.decode(b, errs, raw); herr != nil {
			return herr
		}
		if err == io.EOF {
			return io.EOF
		}
	}
	return nil
}

// readLine returns the next line without its line break. A line over the size
// limit is consumed and its prefix returned with its full length.
func (lr *LineReader) readLine() (line []byte, tooLong int, err error) {
	lr.long = lr.long[:0]
	total := 0
	for {
		chunk, err := lr.br.ReadSlice('\n')
		total += len(chunk)
		if total <= lr.maxBytes+1 {
			if err == bufio.ErrBufferFull || len(lr.long) > 0 {
				lr.long = append(lr.long, chunk...)
			}
		} else if len(lr.long) < 256 {
			lr.long = append(lr.long, chunk[:min(len(chunk), 256)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && total == 0 {
			return nil, 0, err
		}
		if len(lr.long) > 0 || total > lr.maxBytes+1 {
			chunk = lr.long
		}
		chunk = bytes.TrimSuffix(chunk, []byte{'\n'})
		chunk = bytes.TrimSuffix(chunk, []byte{'\r'})
		n := total
		if n > 0 && err == nil {
			n-- // the newline
		}
		if n > lr.maxBytes {
			return chunk, n, err
		}
		return chunk, 0, err
	}
}

// decode copies raw into the slab and decodes it into a new row of b. A
// record that fails is an error event; a CSV header that fails is the
// returned error, since no record after it can be read.
func (lr *LineReader) decode(b *message.Batch, errs *message.ErrorBatch, raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		lr.fail(b, errs, raw, format.ErrEmpty)
		return nil
	}
	if len(lr.slab)+len(raw) > cap(lr.slab) {
		lr.slab = make([]byte, 0, max(slabSize, len(raw)))
	}
	start := len(lr.slab)
	lr.slab = append(lr.slab, raw...)
	line := lr.slab[start:len(lr.slab):len(lr.slab)]
	if lr.csv != nil && !lr.csv.HasHeader() {
		if err := lr.csv.Header(line); err != nil {
			return fmt.Errorf("source %s: %s line %d: %w", lr.origin.Source, lr.origin.File, lr.line, err)
		}
		return nil
	}
	row := b.Append(lr.line)
	if err := lr.dec.Decode(line, row); err != nil {
		b.Truncate()
		lr.fail(b, errs, raw, err)
	}
	return nil
}

func (lr *LineReader) fail(b *message.Batch, errs *message.ErrorBatch, raw []byte, err error) {
	errs.Records++
	o := lr.origin
	errs.Events = append(errs.Events, message.NewErrorEvent(b, "decode",
		message.Coordinates{Source: o.Source, Partition: o.Partition, Offset: lr.line, File: o.File},
		raw[:min(len(raw), message.MaxDecodePayload)], fmt.Sprintf("%s line %d: %v", o.File, lr.line, err)))
}
