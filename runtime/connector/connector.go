// Package connector holds Sluice's sources and sinks: where records come from
// (files, standard input, the data generator) and where results and dead
// letters go (standard output, files, nowhere).
//
// A source is split into partitions, each read by one Reader in its own
// goroutine. A Reader fills batches; it never sends them anywhere itself.
package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/runtime/message"
	"github.com/sluice-dev/sluice/runtime/value"
)

// Reader reads one partition of a source.
type Reader interface {
	// Origin identifies the partition; batches the reader fills point at it.
	Origin() *message.Origin
	// Read appends up to max records to b, waiting at most linger for more once
	// it has one. Records that cannot be decoded are appended to errs instead,
	// with their coordinates and payload, and set b.LastOffset. It returns
	// io.EOF, possibly with records in b, when the partition is exhausted,
	// and ErrLoaded, once, possibly with records in b, when a table's
	// partition that does not end has returned every record it held when
	// the source opened.
	Read(ctx context.Context, b *message.Batch, max int, linger time.Duration, errs *message.ErrorBatch) error
	// Close releases the partition.
	Close() error
}

// ErrLoaded is what a Reader of a table's partition that does not end
// returns once it has returned every record the partition held when the
// source opened: the table is as complete as the source can tell, and
// streams may join with it.
var ErrLoaded = errors.New("table partition loaded")

// Stopper is a reader the pipeline may stop reading before it ends: a
// loaded table partition that does not end, once the streams joined with
// it have, or at once in direct mode. Stop releases what it holds, so that
// the partitions read with it go on.
type Stopper interface {
	Stop()
}

// Seeker is a reader that can start after an offset: a query restored from
// a checkpoint then does not read again the records its state holds.
type Seeker interface {
	// SkipThrough makes the reader's first record the one after offset.
	// It is called before the first Read.
	SkipThrough(offset int64)
}

// Sink writes result rows.
type Sink interface {
	// Write writes the rows of b. An error means the batch may not have been
	// written; the caller retries it or hands it to the error policy. A
	// *RowsError says which rows were not written: the others were, and
	// neither a retry nor the error policy gets them again.
	Write(ctx context.Context, b *message.Batch) error
	// Flush makes what was written durable or visible.
	Flush(ctx context.Context) error
	// Close flushes and releases the sink.
	Close() error
}

// RowsError is a write that failed for some rows of a batch only: the rest
// were written.
type RowsError struct {
	// Rows are the indexes of the rows not written, ascending.
	Rows []int
	// Err is why the first of them failed.
	Err error
}

func (e *RowsError) Error() string {
	return fmt.Sprintf("%d rows not written: %v", len(e.Rows), e.Err)
}

func (e *RowsError) Unwrap() error { return e.Err }

// MaxWritesInFlight is the most batches the sink stage has in flight at an
// AsyncSink at once.
const MaxWritesInFlight = 64 // documented in docs/architecture.md

// AsyncSink is a Sink that can have several batches in flight: the sink
// stage starts the next write while the brokers still acknowledge earlier
// ones, and acknowledges the batches to their sources in order as their
// writes complete.
type AsyncSink interface {
	Sink
	// WriteAsync starts writing b and calls done exactly once, from any
	// goroutine, with the outcome. b stays untouched until done is called.
	WriteAsync(ctx context.Context, b *message.Batch, done func(error))
}

// FailureReporter is an AsyncSink that reports a failed write as soon as it
// happens, before the batch it belongs to has an answer for every row: the
// sink stage then starts no more writes until the failed rows are retried.
type FailureReporter interface {
	// OnFailure sets the function called, from any goroutine, when a row's
	// write fails.
	OnFailure(func())
}

// BatchEncoder is a sink that can have a batch's rows encoded ahead of its
// write, by the goroutine that made them: the partition workers run in
// parallel, the sink's writer is one goroutine. It must be safe for
// concurrent use.
type BatchEncoder interface {
	// EncodeBatch sets b.Encoded, in the sink's own form, from b.Rows.
	EncodeBatch(b *message.Batch)
}

// Encoder turns rows into bytes in a sink's format.
type Encoder interface {
	Header(dst []byte) []byte
	Encode(dst []byte, row value.Row) []byte
}

// Destination is a reader or sink of a messaging system, which its spans
// describe with the OpenTelemetry messaging attributes.
type Destination interface {
	// Destination returns the system ("kafka"), the destination's name (a
	// topic) and the partition a reader reads, -1 for a sink.
	Destination() (system, name string, partition int32)
}
