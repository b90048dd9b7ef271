package controllers

import (
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/manifest"
)

// TestRenderedEngines: the engines' manifest says whether a stateful
// query runs on several engines (which plans its state), as replicas 2
// whatever their count, so that only going from one to several or back
// rolls the engines; a stateless query's says nothing of the count.
func TestRenderedEngines(t *testing.T) {
	rendered := func(query string, replicas int32) (several bool, hash string) {
		t.Helper()
		sq := newKafkaQuery("ns", "q", query, replicas)
		sq.Spec.Sources[0].Schema = append(sq.Spec.Sources[0].Schema, v1alpha1.Column{Name: "ts", Type: "timestamp"})
		sq.Spec.Default()
		b, h, err := renderManifest(sq, query != "SELECT symbol FROM trades")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := manifest.Parse("q.yaml", b)
		if err != nil {
			t.Fatalf("the rendered manifest does not load: %v\n%s", err, b)
		}
		doc.Query.Spec.Default()
		return doc.Query.Spec.SeveralEngines(), h
	}
	windowed := "SELECT window_start, symbol, count(*) AS n FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE) GROUP BY window_start, window_end, symbol"
	one, oneHash := rendered(windowed, 1)
	three, threeHash := rendered(windowed, 3)
	_, fourHash := rendered(windowed, 4)
	if one || !three {
		t.Errorf("a stateful query's engines see several engines: %v on one, %v on three", one, three)
	}
	if oneHash == threeHash || threeHash != fourHash {
		t.Errorf("manifest hashes %s (1), %s (3), %s (4): want 3 and 4 alike, 1 apart", oneHash, threeHash, fourHash)
	}
	if several, _ := rendered("SELECT symbol FROM trades", 3); several {
		t.Error("a stateless query's manifest has its count of engines")
	}
}
