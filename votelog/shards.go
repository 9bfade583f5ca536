package votelog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ShardsKey is the metadata key of the VOTES stream holding the shard count
// the log was first started with. It lives in the stream's own
// configuration (nats-server 2.10+ keeps stream metadata), so it is
// replicated, backed up and restored with the log itself and can never
// disagree with it, as a separate key-value entry could.
const ShardsKey = "pollcast_shards"

// ShardsChangedError is EnsureStream's error when the log was started with
// another shard count than the one configured: votes published by this
// node would go to shards that no tally reads as this node would.
type ShardsChangedError struct {
	// Stored is the shard count recorded in the log at its first start.
	Stored int
	// Configured is the shard count this node was started with.
	Configured int
}

func (e *ShardsChangedError) Error() string {
	return fmt.Sprintf("votelog: the vote log was first started with --shards %d and this node with --shards %d: "+
		"start it with --shards %d (POLLCAST_SHARDS); the shard count is fixed at a log's first start",
		e.Stored, e.Configured, e.Stored)
}

// streamMetadata returns the metadata the VOTES stream is to have: what it
// holds (without the server's own "_nats." keys), with the shard count
// recorded when it has none yet. It fails with *ShardsChangedError when
// the log records another count than shards. shards 0 neither records nor
// checks anything.
func streamMetadata(ctx context.Context, js jetstream.JetStream, shards int) (map[string]string, error) {
	meta := map[string]string{}
	s, err := js.Stream(ctx, StreamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return nil, fmt.Errorf("votelog: stream: %w", err)
	default:
		for k, v := range s.CachedInfo().Config.Metadata {
			if !strings.HasPrefix(k, "_nats.") {
				meta[k] = v
			}
		}
	}
	if shards == 0 {
		return meta, nil
	}
	if v, ok := meta[ShardsKey]; ok {
		stored, err := strconv.Atoi(v)
		if err != nil || stored < 1 {
			return nil, fmt.Errorf("votelog: the vote log records a shard count of %q, not a number: set its %s metadata to the --shards it was started with", v, ShardsKey)
		}
		if stored != shards {
			return nil, &ShardsChangedError{Stored: stored, Configured: shards}
		}
		return meta, nil
	}
	// A new log, or one from before the count was recorded: it adopts the
	// configured count.
	meta[ShardsKey] = strconv.Itoa(shards)
	return meta, nil
}

// StoredShards returns the shard count recorded in the VOTES stream, 0 when
// it records none.
func StoredShards(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return 0, fmt.Errorf("votelog: stream: %w", err)
	}
	n, _ := strconv.Atoi(s.CachedInfo().Config.Metadata[ShardsKey])
	return n, nil
}
