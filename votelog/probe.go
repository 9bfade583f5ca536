package votelog

import (
	"cmp"
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// ProbeStream is a stream of at most one small message. While the log
	// refuses writes for want of room, ingest writes to it to learn when the
	// server or the account takes writes again, without adding anything to
	// VOTES.
	ProbeStream = "POLLCAST_PROBE"
	// ProbeSubject is the one subject of ProbeStream.
	ProbeSubject = "pollcast.probe"
)

// EnsureProbe creates ProbeStream or brings its configuration up to date.
// replicas is the stream's replica count, the VOTES stream's (zero value
// means 1): a probe then needs what a vote needs.
func EnsureProbe(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ProbeStream,
		Description: "pollcast: whether the server takes writes again after refusing votes",
		Subjects:    []string{ProbeSubject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    cmp.Or(replicas, 1),
		MaxMsgs:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("votelog: probe stream: %w", err)
	}
	return s, nil
}
