package main

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollcast/pollcast/votelog"
)

// startRetention trims the log every RetentionInterval while serving, down
// to what every fold of this deployment saved: the tally (its snapshots in
// memory mode, its stored watermarks in Redis), the voter registry (its
// snapshots in memory mode; a Redis registry is durable) and the analytics
// store.
func (m *Main) startRetention(js jetstream.JetStream) error {
	if m.cfg.LogRetention <= 0 {
		return nil
	}
	if m.tally == nil || m.astore == nil {
		return errors.New("--log-retention needs the tally and analytics roles in this process")
	}
	floors := []votelog.Floor{{Name: "analytics", Need: func(ctx context.Context) (uint64, error) {
		last, err := m.astore.LastSeq(ctx)
		return last + 1, err
	}}}
	if m.snaps != nil {
		floors = append(floors, votelog.Floor{Name: "snapshots", Need: m.snaps.Need})
	} else {
		floors = append(floors, votelog.Floor{Name: "tally", Need: m.tally.Need})
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopRetention = cancel
	m.retention.Go(func() {
		votelog.Retain(ctx, js, votelog.RetentionConfig{
			MaxAge: m.cfg.LogRetention, Interval: m.cfg.RetentionInterval, Floors: floors,
			Replicas: m.cfg.Replicas, Logger: m.logger,
		})
	})
	m.logger.Info("retention: votes leave the log once saved and older than", "age", m.cfg.LogRetention)
	return nil
}
