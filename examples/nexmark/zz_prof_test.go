package nexmark_test

import (
	"context"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/examples/nexmark"
	"github.com/sluice-dev/sluice/runtime/connector/bundle"
	"github.com/sluice-dev/sluice/runtime/pipeline"
)

func TestProfQ(t *testing.T) {
	spec, _ := nexmark.Spec("q18")
	spec.Sources[0].Datagen.Count = 2000000
	spec.Sink = v1alpha1.Sink{Null: &v1alpha1.NullSink{}}
	p, err := pipeline.New(spec, pipeline.Options{Connectors: bundle.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
