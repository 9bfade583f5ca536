package main

import (
	"testing"
	"time"
)

// TestEmbeddedLogSyncsAlways: pollcast's embedded log flushes every write to
// disk before acknowledging it unless --fsync says an interval, as the
// running NATS server reports it.
func TestEmbeddedLogSyncsAlways(t *testing.T) {
	tests := []struct {
		name         string
		fsync        time.Duration
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"default", 0, true, 0},
		{"--fsync 2m", 2 * time.Minute, false, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startApp(t, func(c *Config) { c.Fsync = tt.fsync })
			js := a.emb.Server.JetStreamConfig()
			if js == nil {
				t.Fatal("the embedded server runs no JetStream")
			}
			if js.SyncAlways != tt.wantAlways || (!tt.wantAlways && js.SyncInterval != tt.wantInterval) {
				t.Fatalf("server syncs always=%v every %v; want always=%v every %v", js.SyncAlways, js.SyncInterval, tt.wantAlways, tt.wantInterval)
			}
		})
	}
}
