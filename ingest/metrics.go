package ingest

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollcast/pollcast/poll"
)

type metrics struct {
	accepted prometheus.Counter
	rejected *prometheus.CounterVec
	unknown  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_votes_accepted_total", Help: "Votes stored in the log and answered 202.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollcast_votes_rejected_total", Help: "Votes refused, by API error code.",
		}, []string{"code"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_vote_outcomes_unknown_total", Help: "Log messages whose acknowledgement did not come in time, whose outcome ingest then learned.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.accepted, m.rejected, m.unknown} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (s *Service) observe(err error) {
	if err == nil {
		s.m.accepted.Inc()
		return
	}
	code := poll.CodeInternal
	var pe *poll.Error
	if errors.As(err, &pe) {
		code = pe.Code
	}
	s.m.rejected.WithLabelValues(string(code)).Inc()
}
