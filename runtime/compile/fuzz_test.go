package compile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/manifest"
)

// FuzzManifest: no manifest, however malformed, panics the loader or the
// planner, which `engine validate`, `engine run` and the operator run on
// whatever a user writes; every problem found is placed in the file.
func FuzzManifest(f *testing.F) {
	for _, pattern := range []string{"../../examples/*.yaml", "../../examples/nexmark/*.yaml", "../../cmd/engine/testdata/validate/*.yaml", "../../config/samples/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		doc, err := manifest.Parse("q.yaml", src)
		if err != nil {
			if _, ok := err.(v1alpha1.Problems); !ok {
				t.Errorf("Parse returned %T %v; want Problems", err, err)
			}
			return
		}
		doc.Query.Spec.Default()
		_, _, err = Plan(&doc.Query.Spec)
		for _, d := range doc.Locate(err) {
			if d.Message == "" {
				t.Errorf("a problem without a message: %+v", d)
			}
		}
	})
}
