package realtime

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	viewers prometheus.Gauge
	sent    prometheus.Counter
	slow    prometheus.Counter
	refused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pollcast_realtime_viewers", Help: "Live viewers connected to this node.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_realtime_messages_sent_total", Help: "Messages written to live viewers.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_realtime_slow_viewers_closed_total", Help: "Live viewers closed for being too slow or unresponsive.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pollcast_realtime_refused_total", Help: "Live connections refused because their client address held the most allowed on this node.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.viewers, m.sent, m.slow, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("realtime: metrics: %w", err)
			}
		}
	}
	return m, nil
}
