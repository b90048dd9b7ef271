package checkpoint

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Store keeps a query's checkpoints.
type Store interface {
	// Save makes c durable: once it returns, Latest returns c's chain or a
	// later one, whatever happens to the process. A delta is saved after
	// the checkpoint it is on.
	Save(ctx context.Context, c *Checkpoint) error
	// Latest returns the chain of the newest checkpoint that can be
	// restored, nil if there is none.
	Latest(ctx context.Context) (Chain, error)
	// Highest returns the highest ID in the store as of the last Latest,
	// whether or not it reads back: a checkpoint cut short, or passed over,
	// must not share its ID with a new one, whose chain would take it in.
	Highest() uint64
	// Describe names where the store keeps checkpoints, for logs.
	Describe() string
	// Close releases what the store holds.
	Close() error
}

// PartitionStore keeps checkpoints of single partitions besides, for
// queries on several engines, whose state moves between them with its
// partitions: each engine saves a checkpoint of each partition it owns,
// and one that is assigned a partition restores the partition's latest.
type PartitionStore interface {
	// SavePartition saves c, a checkpoint of c.Partitions[0] alone.
	SavePartition(ctx context.Context, c *Checkpoint) error
	// LatestPartition returns the newest checkpoint of a partition that
	// reads back whole, preferring, of two with one ID, the later epoch;
	// nil if there is none.
	LatestPartition(ctx context.Context, source string, partition int32) (*Checkpoint, error)
	// NewestPartition returns when the newest checkpoint of a partition
	// the store holds was taken; false if it holds none.
	NewestPartition(ctx context.Context) (time.Time, bool, error)
}

// Dir is a Store in a local directory (engine run's, or a volume's on
// Kubernetes): one file a checkpoint, written to a temporary file, synced
// and renamed into place, so that a crash leaves either the new checkpoint
// or none of it. It keeps the chains of the newest two whole checkpoints,
// so that a newest one damaged on disk leaves an older one to restore.
type Dir struct {
	Path    string
	highest uint64
}

// Highest implements Store.
func (d *Dir) Highest() uint64 { return d.highest }

const (
	suffix      = ".checkpoint"
	deltaSuffix = ".delta" + suffix
)

func (d *Dir) name(id uint64, delta bool) string {
	if delta {
		return filepath.Join(d.Path, fmt.Sprintf("%020d%s", id, deltaSuffix))
	}
	return filepath.Join(d.Path, fmt.Sprintf("%020d%s", id, suffix))
}

// Describe implements Store.
func (d *Dir) Describe() string { return "directory " + d.Path }

// Close implements Store; a directory holds nothing open.
func (d *Dir) Close() error { return nil }

// Save implements Store.
func (d *Dir) Save(_ context.Context, c *Checkpoint) error {
	if err := os.MkdirAll(d.Path, 0o750); err != nil {
		return fmt.Errorf("checkpoint directory: %w", err)
	}
	f, err := os.CreateTemp(d.Path, ".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", c.ID, err)
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = c.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.name(c.ID, c.Delta))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %d: %w", c.ID, err)
	}
	// The rename is durable once the directory is.
	if dir, err := os.Open(d.Path); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return fmt.Errorf("checkpoint %d: syncing %s: %w", c.ID, d.Path, err)
		}
	}
	if c.Delta {
		return nil
	}
	files, err := d.files()
	if err != nil {
		return err
	}
	var whole []uint64
	for _, f := range files {
		if !f.delta {
			whole = append(whole, f.id)
		}
	}
	if len(whole) > 2 {
		for _, f := range files {
			if f.id < whole[len(whole)-2] {
				os.Remove(d.name(f.id, f.delta))
			}
		}
	}
	return nil
}

// file is a checkpoint's file in the directory.
type file struct {
	id    uint64
	delta bool
}

// files returns the checkpoints in the directory, in order.
func (d *Dir) files() ([]file, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	var files []file
	for _, e := range entries {
		name, delta := strings.CutSuffix(e.Name(), deltaSuffix)
		if !delta {
			var ok bool
			if name, ok = strings.CutSuffix(name, suffix); !ok {
				continue
			}
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			files = append(files, file{id, delta})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(a.id, b.id) })
	return files, nil
}

// Latest implements Store. A checkpoint file that does not read back (cut
// short by a full disk, altered) is passed over for the one before it; the
// error says so only when none can be restored.
func (d *Dir) Latest(context.Context) (Chain, error) {
	files, err := d.files()
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(files))
	delta := map[uint64]bool{}
	for i, f := range files {
		ids[i] = f.id
		delta[f.id] = f.delta
		d.highest = max(d.highest, f.id)
	}
	return NewestChain(ids, func(id uint64) (*Checkpoint, error) {
		name := d.name(id, delta[id])
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c, err := Decode(b)
		if err == nil && (c.ID != id || c.Delta != delta[id]) {
			err = fmt.Errorf("%w: it holds checkpoint %d", ErrCorrupt, c.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return c, nil
	})
}
