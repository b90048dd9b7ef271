package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Store keeps a query's checkpoints.
type Store interface {
	// Save makes c durable: once it returns, Latest returns c or a later
	// checkpoint, whatever happens to the process.
	Save(ctx context.Context, c *Checkpoint) error
	// Latest returns the newest checkpoint that reads back whole, nil if
	// there is none.
	Latest(ctx context.Context) (*Checkpoint, error)
	// Describe names where the store keeps checkpoints, for logs.
	Describe() string
	// Close releases what the store holds.
	Close() error
}

// Dir is a Store in a local directory (engine run's, or a volume's on
// Kubernetes): one file a checkpoint, written to a temporary file, synced
// and renamed into place, so that a crash leaves either the new checkpoint
// or none of it. It keeps the newest Keep checkpoints, so that a newest one
// damaged on disk leaves an older one to restore.
type Dir struct {
	Path string
	// Keep is how many checkpoints stay; at least 2.
	Keep int
}

const suffix = ".checkpoint"

func (d *Dir) name(id uint64) string {
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
	_, err = f.Write(c.Encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.name(c.ID))
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
	ids, err := d.ids()
	if err != nil {
		return err
	}
	for _, id := range ids[:max(len(ids)-max(d.Keep, 2), 0)] {
		os.Remove(d.name(id))
	}
	return nil
}

// ids returns the ids of the checkpoints in the directory, in order.
func (d *Dir) ids() ([]uint64, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		if id, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), suffix), 10, 64); err == nil && strings.HasSuffix(e.Name(), suffix) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Latest implements Store. A checkpoint file that does not read back (cut
// short by a full disk, altered) is passed over for the one before it; the
// error says so only when none reads.
func (d *Dir) Latest(context.Context) (*Checkpoint, error) {
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := len(ids) - 1; i >= 0; i-- {
		b, err := os.ReadFile(d.name(ids[i]))
		if err == nil {
			var c *Checkpoint
			if c, err = Decode(b); err == nil {
				return c, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", d.name(ids[i]), err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, nil
}
