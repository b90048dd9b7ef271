package connector

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/runtime/connector/schemas"
)

func TestRegistryOpensByKey(t *testing.T) {
	r := Builtins()
	src := &v1alpha1.Source{Name: "gen", Datagen: &v1alpha1.DatagenSource{Generator: "trades", Partitions: 3, Count: 1}}
	cols, err := schemas.Generator("trades")
	if err != nil {
		t.Fatal(err)
	}
	opened, err := r.OpenSource(SourceEnv{Source: src, Columns: cols})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(opened.Readers()); n != 3 {
		t.Errorf("datagen with 3 partitions opened %d readers", n)
	}
	if sink, err := r.OpenSink(SinkEnv{Spec: &v1alpha1.Sink{Null: &v1alpha1.NullSink{}}}); err != nil {
		t.Fatal(err)
	} else if _, ok := sink.(NullSink); !ok {
		t.Errorf("null sink opened a %T", sink)
	}
}

func TestRegistryUnknownConnector(t *testing.T) {
	r := Builtins()
	src := &v1alpha1.Source{Name: "trades", Kafka: &v1alpha1.KafkaSource{Topic: "t"}}
	_, err := r.OpenSource(SourceEnv{Source: src})
	want := "source trades: this engine has no kafka connector (it has datagen, file, stdin)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	_, err = r.OpenSink(SinkEnv{Spec: &v1alpha1.Sink{}})
	if err == nil || !strings.Contains(err.Error(), "sink: no connector set") {
		t.Errorf("a sink with no connector: got %v", err)
	}
}

func TestRegistryRefusesTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second registration of file did not panic")
		}
	}()
	Builtins().RegisterSource("file", openFileSource)
}
