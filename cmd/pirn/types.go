package main

import (
	"sync"

	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/emit/openlineage"
	"github.com/pirn-wasm/pirn/emit/otel"
	"github.com/pirn-wasm/pirn/serve"
	"github.com/pirn-wasm/pirn/serve/kafka"
	"github.com/pirn-wasm/pirn/serve/nats"
	"github.com/pirn-wasm/pirn/serve/valkey"
)

// The serve.yaml types that live outside packages serve and emit, added
// to their registries in one place (no init registration): each row is a
// type and its trigger, streaming source and emitter, nil where it has
// none.
var extraTypes = []struct {
	name    string
	trigger func(emit.Spec) (serve.Trigger, error)
	source  func(emit.Spec) (serve.Source, error)
	emitter func(emit.Spec) (emit.Emitter, error)
}{
	{kafka.Type,
		func(s emit.Spec) (serve.Trigger, error) { return kafka.NewTrigger(s) },
		func(s emit.Spec) (serve.Source, error) { return kafka.NewSource(s) },
		func(s emit.Spec) (emit.Emitter, error) { return kafka.NewEmitter(s) }},
	{valkey.Type,
		func(s emit.Spec) (serve.Trigger, error) { return valkey.NewTrigger(s) },
		valkey.NewSource,
		func(s emit.Spec) (emit.Emitter, error) { return valkey.NewEmitter(s) }},
	{nats.Type,
		func(s emit.Spec) (serve.Trigger, error) { return nats.NewTrigger(s) },
		nats.NewSource,
		func(s emit.Spec) (emit.Emitter, error) { return nats.NewEmitter(s) }},
	{"otel", nil, nil, otel.FromSpec},
	{"openlineage", nil, nil, openlineage.FromSpec},
}

var registerTypes = sync.OnceFunc(func() {
	for _, t := range extraTypes {
		if t.trigger != nil {
			serve.Triggers.Register(t.name, t.trigger)
		}
		if t.source != nil {
			serve.Sources.Register(t.name, t.source)
		}
		if t.emitter != nil {
			emit.Emitters.Register(t.name, t.emitter)
		}
	}
})
