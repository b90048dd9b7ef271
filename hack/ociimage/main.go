// Command ociimage writes a container image of one static binary as an
// image archive, without Docker or a registry: one layer holding the binary
// (and an empty /tmp), run as a numeric non-root user. The archive is both
// an OCI image layout (index.json, blobs/) and a docker-save archive
// (manifest.json), so `ctr images import`, `kind load image-archive`,
// `docker load` and `podman load` all read it. It is reproducible: every
// timestamp is the epoch and every list is in a fixed order, so the same
// binary gives the same digest.
//
//	ociimage -binary bin/engine -name ghcr.io/sluice-dev/sluice-engine:v0.1.0 -o engine.tar
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "", "the static binary to put in the image")
	name := flag.String("name", "", "the image's full name, registry/repository:tag")
	entrypoint := flag.String("entrypoint", "", "the binary's path in the image (default /<its file name>)")
	user := flag.String("user", "65532:65532", "the numeric user:group the image runs as")
	out := flag.String("o", "", "the archive to write")
	flag.Parse()
	if *binary == "" || *name == "" || *out == "" {
		flag.Usage()
		return fmt.Errorf("-binary, -name and -o are required")
	}
	if !strings.Contains(path.Base(*name), ":") {
		return fmt.Errorf("-name %q has no tag", *name)
	}
	if *entrypoint == "" {
		*entrypoint = "/" + path.Base(*binary)
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return err
	}
	archive, err := imageArchive(bin, *name, *entrypoint, *user)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, archive, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

// The media types of the image's parts.
const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is a content-addressed file of the archive.
type blob struct {
	data   []byte
	digest string
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func (b blob) path() string { return "blobs/sha256/" + strings.TrimPrefix(b.digest, "sha256:") }

func (b blob) descriptor(mediaType string) descriptor {
	return descriptor{MediaType: mediaType, Digest: b.digest, Size: len(b.data)}
}

// imageArchive builds the archive of an image of one binary.
func imageArchive(bin []byte, name, entrypoint, user string) ([]byte, error) {
	layer, err := tarOf([]entry{
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: strings.TrimPrefix(entrypoint, "/"), mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	layerBlob := newBlob(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, // the binary's, which this program's build shares

		"os":      "linux",
		"created": time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config": map[string]any{
			"User":       user,
			"Entrypoint": []string{entrypoint},
			"Env":        []string{"PATH=/"},
			"WorkingDir": "/tmp",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerBlob.digest}},
	})
	if err != nil {
		return nil, err
	}
	configBlob := newBlob(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        configBlob.descriptor(mediaConfig),
		"layers":        []descriptor{layerBlob.descriptor(mediaLayer)},
	})
	if err != nil {
		return nil, err
	}
	manifestBlob := newBlob(manifest)
	tag := name[strings.LastIndex(name, ":")+1:]
	md := manifestBlob.descriptor(mediaManifest)
	md.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tag,
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []descriptor{md}})
	if err != nil {
		return nil, err
	}
	// docker load reads manifest.json instead; the blobs are the same files.
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   configBlob.path(),
		"RepoTags": []string{name},
		"Layers":   []string{layerBlob.path()},
	}})
	if err != nil {
		return nil, err
	}
	return tarOf([]entry{
		{name: "blobs/", dir: true, mode: 0o755},
		{name: "blobs/sha256/", dir: true, mode: 0o755},
		{name: configBlob.path(), mode: 0o644, data: configBlob.data},
		{name: layerBlob.path(), mode: 0o644, data: layerBlob.data},
		{name: manifestBlob.path(), mode: 0o644, data: manifestBlob.data},
		{name: "index.json", mode: 0o644, data: index},
		{name: "manifest.json", mode: 0o644, data: dockerManifest},
		{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	})
}

type entry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// tarOf writes entries, in order, owned by root and dated at the epoch.
func tarOf(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := w.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.Copy(w, bytes.NewReader(e.data)); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
