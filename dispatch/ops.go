package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pirn-wasm/pirn/internal/pcbor"
)

// workerTTL is how long a worker's entry outlives its last refresh: a
// worker that stops refreshing (killed) leaves the list within it.
const (
	workerTTL     = 5 * time.Second
	workerRefresh = time.Second
)

// WorkerInfo is what a worker publishes about itself each second.
type WorkerInfo struct {
	ID          string `cbor:"id" json:"id"`
	Host        string `cbor:"host" json:"host"`
	PID         int    `cbor:"pid" json:"pid"`
	Pool        string `cbor:"pool" json:"pool"`
	Slots       int    `cbor:"slots" json:"slots"`
	Busy        int    `cbor:"busy" json:"busy"` // slots in use
	Done        int64  `cbor:"done" json:"done"` // jobs finished with a result (ok, err or skip)
	Failed      int64  `cbor:"failed" json:"failed"`
	Redelivered int64  `cbor:"redelivered" json:"redelivered"` // jobs this worker took that had been delivered before
	AllowGrants bool   `cbor:"allow_grants" json:"allow_grants"`
	Started     int64  `cbor:"started" json:"started"` // Unix nanoseconds
	Version     int    `cbor:"version" json:"version"`
}

// Workers lists the live workers, by pool and id.
func (b *Broker) Workers(ctx context.Context) ([]WorkerInfo, error) {
	keys, err := b.workers.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	var out []WorkerInfo
	for k := range keys.Keys() {
		e, err := b.workers.Get(ctx, k)
		if err != nil {
			continue // it expired since the listing
		}
		var w WorkerInfo
		if pcbor.UnmarshalMessage(e.Value(), &w) == nil {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int { return strings.Compare(a.Pool+"\x00"+a.ID, b.Pool+"\x00"+b.ID) })
	return out, nil
}

// liveWorkers counts the live workers of a pool.
func (b *Broker) liveWorkers(ctx context.Context, pool string) (int, error) {
	ws, err := b.Workers(ctx)
	n := 0
	for _, w := range ws {
		if w.Pool == pool {
			n++
		}
	}
	return n, err
}

// PoolStats is a pool's queue, as the broker counts it.
type PoolStats struct {
	Pool        string        `json:"pool"`
	Queued      uint64        `json:"queued"`      // jobs waiting for a worker
	InFlight    int           `json:"in_flight"`   // delivered and not yet acked
	Redelivered int           `json:"redelivered"` // in flight after an earlier delivery
	AckWait     time.Duration `json:"ack_wait_ns"`
	MaxDeliver  int           `json:"max_deliver"`
}

// Pools reports each pool's queue: one entry per pool that has had a
// worker.
func (b *Broker) Pools(ctx context.Context) ([]PoolStats, error) {
	var out []PoolStats
	prefix := b.cfg.Prefix + "-"
	names := b.jobs.ConsumerNames(ctx)
	for name := range names.Name() {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		c, err := b.jobs.Consumer(ctx, name)
		if err != nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			continue
		}
		out = append(out, PoolStats{Pool: strings.TrimPrefix(name, prefix), Queued: info.NumPending, InFlight: info.NumAckPending,
			Redelivered: info.NumRedelivered, AckWait: info.Config.AckWait, MaxDeliver: info.Config.MaxDeliver})
	}
	if err := names.Err(); err != nil {
		return out, fmt.Errorf("list pools: %w", err)
	}
	slices.SortFunc(out, func(a, b PoolStats) int { return strings.Compare(a.Pool, b.Pool) })
	return out, nil
}

// putRun keeps a run's record.
func (b *Broker) putRun(ctx context.Context, r *RunRecord) error {
	v, err := pcbor.Marshal(r)
	if err != nil {
		return err
	}
	if len(v) > MaxRunRecord {
		return fmt.Errorf("run %s: its request is %d bytes encoded, over the limit of %d", r.Run, len(v), MaxRunRecord)
	}
	if _, err := b.runs.Put(ctx, RunToken(r.Run), v); err != nil {
		return fmt.Errorf("keep run %s on the broker: %w", r.Run, err)
	}
	return nil
}

// ErrUnknownRun is wrapped by Broker.Run for a run it does not keep.
var ErrUnknownRun = errors.New("no such run on the broker")

// Run returns a run's record, or an error wrapping ErrUnknownRun.
func (b *Broker) Run(ctx context.Context, runID string) (*RunRecord, error) {
	e, err := b.runs.Get(ctx, RunToken(runID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("run %s: %w", runID, ErrUnknownRun)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s on the broker: %w", runID, err)
	}
	var r RunRecord
	if err := pcbor.UnmarshalMessage(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("run %s on the broker: %w", runID, err)
	}
	if r.Run != runID {
		return nil, fmt.Errorf("run %s on the broker: the record is of run %.64q", runID, r.Run)
	}
	return &r, nil
}

// setRunState changes a kept run's state; errNotRecorded if none is kept.
func (b *Broker) setRunState(ctx context.Context, tok, state string) error {
	e, err := b.runs.Get(ctx, tok)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return errNotRecorded
	}
	if err != nil {
		return err
	}
	var r RunRecord
	if err := pcbor.UnmarshalMessage(e.Value(), &r); err != nil {
		return err
	}
	r.State = state
	v, err := pcbor.Marshal(&r)
	if err != nil {
		return err
	}
	_, err = b.runs.Update(ctx, tok, v, e.Revision())
	return err
}
