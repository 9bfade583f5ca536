package votelog_test

import (
	"testing"
	"time"

	"github.com/pollcast/pollcast/votelog"
)

// TestEmbeddedSync: the embedded server flushes every write to disk unless
// told an interval, as the running server reports it.
func TestEmbeddedSync(t *testing.T) {
	tests := []struct {
		name         string
		cfg          votelog.EmbeddedConfig
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"zero value: always", votelog.EmbeddedConfig{}, true, 0},
		{"an interval", votelog.EmbeddedConfig{SyncInterval: 2 * time.Minute}, false, 2 * time.Minute},
		{"a short interval", votelog.EmbeddedConfig{SyncInterval: time.Second}, false, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emb, err := votelog.StartEmbedded(t.TempDir(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(emb.Shutdown)
			js := emb.Server.JetStreamConfig()
			if js == nil {
				t.Fatal("JetStream is not running")
			}
			if js.SyncAlways != tt.wantAlways {
				t.Errorf("server SyncAlways = %v, want %v", js.SyncAlways, tt.wantAlways)
			}
			if !tt.wantAlways && js.SyncInterval != tt.wantInterval {
				t.Errorf("server SyncInterval = %v, want %v", js.SyncInterval, tt.wantInterval)
			}
			if always, interval := emb.Sync(); always != js.SyncAlways || interval != js.SyncInterval {
				t.Errorf("Sync() = %v, %v; the server holds %v, %v", always, interval, js.SyncAlways, js.SyncInterval)
			}
		})
	}
	if _, err := votelog.StartEmbedded(t.TempDir(), votelog.EmbeddedConfig{SyncInterval: -time.Second}); err == nil {
		t.Error("a negative sync interval was accepted")
	}
}
