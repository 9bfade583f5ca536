package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/ingest"
	"github.com/pollcast/pollcast/internal/persist"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/realtime"
	"github.com/pollcast/pollcast/tally"
	"github.com/pollcast/pollcast/votelog"
	"github.com/pollcast/pollcast/web"
)

// Main is one running pollcast process: every role wired together. Tests
// start it with Addr "127.0.0.1:0" and a temporary Data directory.
type Main struct {
	cfg    Config
	logger *slog.Logger
	stdout io.Writer

	emb     *votelog.Embedded
	ncs     []*nats.Conn
	catalog *poll.Catalog
	store   tally.Store
	tally   *tally.Tally
	ingest  *ingest.Service
	hub     *realtime.Hub
	rdb     redis.UniversalClient
	astore  analytics.Store
	sink    *analytics.Sink
	ln      net.Listener
	srv     *http.Server
	served  chan error
	pprof   *http.Server

	snaps         *persist.Snapshots // memory mode: saves and loads the counters and voters
	snapLoaded    string             // the snapshot this start loaded, if any
	stopRetention context.CancelFunc // stops the log's retention loop
	retention     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns an unstarted process. stdout receives the generated admin
// key on first start.
func NewMain(cfg Config, logger *slog.Logger, stdout io.Writer) *Main {
	return &Main{cfg: cfg, logger: logger, stdout: stdout}
}

// Addr returns the address the HTTP server listens on, once Run returned.
func (m *Main) Addr() string {
	return m.ln.Addr().String()
}

// Run starts every role and returns once the node serves HTTP: the log, the
// catalog, the tally (rebuilt from the log), ingest (voters rebuilt from the
// log), the realtime hub and the HTTP server. ctx bounds the start only.
func (m *Main) Run(ctx context.Context) error {
	gin.SetMode(gin.ReleaseMode)
	if m.cfg.Roles == nil {
		m.cfg.AllRoles()
	}
	roles := m.cfg.Roles
	ln, err := net.Listen("tcp", m.cfg.Addr) // listen first: a bad address fails at once
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.ln = ln
	if err := os.MkdirAll(m.cfg.Data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	if m.cfg.NATS == "" {
		if m.emb, err = votelog.StartEmbedded(filepath.Join(m.cfg.Data, "nats"), votelog.EmbeddedConfig{SyncInterval: m.cfg.Fsync}); err != nil {
			return err
		}
		if always, every := m.emb.Sync(); !always {
			m.logger.Info("the vote log flushes to disk only every interval: a machine crash may lose the votes of the last one", "fsync", every)
		}
	}
	ncMain, err := m.connect("pollcast")
	if err != nil {
		return err
	}
	js, err := jetstream.New(ncMain)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := votelog.EnsureStream(ctx, js, votelog.StreamConfig{Replicas: m.cfg.Replicas, Shards: m.cfg.Shards}); err != nil {
		return err
	}
	m.catalog, err = poll.OpenCatalog(ctx, js, poll.CatalogConfig{Logger: m.logger, Replicas: m.cfg.Replicas})
	if err != nil {
		return err
	}
	if err := m.ensureAdminKey(ctx); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := []web.Check{{Name: "catalog", Check: m.catalog.Ping}}

	// Memory mode: counters, voters and idempotency keys come back from
	// the newest snapshot, and only the log after it is read.
	var snap persist.Loaded
	if len(m.cfg.Redis) == 0 && m.cfg.SnapshotInterval > 0 && roles["tally"] && roles["ingest"] {
		if m.snaps, err = persist.New(js, persist.Config{Dir: filepath.Join(m.cfg.Data, "snapshots"), Interval: m.cfg.SnapshotInterval,
			Shards: m.cfg.Shards, IdempotencyWindow: m.cfg.IdempotencyWindow, Drop: m.catalog.Deleted, Logger: m.logger}); err != nil {
			return err
		}
		snap, _ = m.snaps.Load()
		m.snapLoaded = snap.Path
	}
	if snap.Store != nil {
		m.store = snap.Store
	} else if m.store, err = m.tallyStore(); err != nil {
		return err
	}
	ready = append(ready, web.Check{Name: "tally", Check: m.store.Ping})
	start := time.Now()
	if roles["ingest"] {
		ncIngest, err := m.connect("pollcast-ingest")
		if err != nil {
			return err
		}
		icfg := ingest.Config{Shards: m.cfg.Shards, VoteRate: m.cfg.VoteRate, Region: m.cfg.Region, Logger: m.logger, Registerer: reg,
			Voted: m.store.HasVoter, MaxTokenTTL: m.cfg.MaxTokenTTL}
		keys := ingest.KeysConfig{Window: m.cfg.IdempotencyWindow}
		icfg.Keys = ingest.NewMemoryKeys(keys)
		if m.rdb != nil { // several ingest nodes: one voter registry and one rate limit for all
			if icfg.Voters, err = ingest.NewRedisVoters(m.rdb, ingest.RedisVotersConfig{}); err != nil {
				return err
			}
			if icfg.Keys, err = ingest.NewRedisKeys(m.rdb, ingest.RedisKeysConfig{KeysConfig: keys}); err != nil {
				return err
			}
			icfg.Limiter = ingest.NewRedisLimiter(m.rdb, "", m.cfg.VoteRate)
		} else if snap.Voters != nil {
			icfg.Voters = snap.Voters
			icfg.Keys = snap.Keys
		}
		if m.ingest, err = ingest.New(ncIngest, m.catalog, icfg); err != nil {
			return err
		}
		ready = append(ready, web.Check{Name: "log", Check: m.ingest.Ready})
	}
	// The tally's start-up read of the log also rebuilds ingest's voter
	// registry: one read of the log, not two.
	var seen uint64
	if roles["tally"] {
		if err := m.startTally(ctx, js, ncMain, reg); err != nil {
			return err
		}
		seen = max(m.tally.Observed(), snap.Covered)
		ready = append(ready, web.Check{Name: "tally-log", Check: m.tally.Ready})
	}
	if m.ingest != nil {
		if err := m.ingest.RebuildAfter(ctx, seen); err != nil {
			return err
		}
	}
	m.logger.Info("rebuilt state from the log", "took", time.Since(start).Round(time.Millisecond))

	if roles["analytics"] || roles["web"] {
		if m.cfg.ClickHouse != "" {
			m.astore, err = analytics.OpenClickHouse(ctx, m.cfg.ClickHouse)
		} else {
			m.astore, err = analytics.OpenSQLite(ctx, filepath.Join(m.cfg.Data, "analytics.db"))
		}
		if err != nil {
			return err
		}
	}
	if roles["analytics"] {
		if m.sink, err = analytics.NewSink(js, m.astore, analytics.SinkConfig{Logger: m.logger, Registerer: reg}); err != nil {
			return err
		}
		if err := m.sink.TrimAhead(ctx); err != nil {
			return err
		}
		m.sink.Start()
	}
	if m.snaps != nil {
		m.snaps.Start(persist.Roles{Store: m.store.(*tally.MemoryStore), Tally: m.tally, Ingest: m.ingest})
	}
	if err := m.startRetention(js); err != nil {
		return err
	}
	if roles["realtime"] {
		m.hub, err = realtime.NewHub(ncMain, m.catalog, m.store.Counts, realtime.HubConfig{
			PingInterval: m.cfg.LivePingInterval, PingTimeout: m.cfg.LivePingTimeout, Logger: m.logger, Registerer: reg,
			MaxPerClient: m.cfg.MaxLivePerIP,
		})
		if err != nil {
			return err
		}
	}
	var handler http.Handler
	if roles["web"] {
		handler, err = web.New(web.Deps{
			Catalog: m.catalog, Ingest: m.ingest, Store: m.store, Hub: m.hub, Analytics: m.astore, Gatherer: reg, Ready: ready,
		}, web.Config{TrustedProxies: m.cfg.TrustedProxies, Logger: m.logger, PublicURL: m.cfg.PublicURL,
			BodyReadTimeout: m.cfg.BodyReadTimeout, PurgeTimeout: m.cfg.PurgeTimeout})
		if err != nil {
			return err
		}
	} else {
		handler = web.NewOps(reg, ready, m.logger)
	}
	if err := m.servePprof(); err != nil {
		return err // before m.srv is set: close then closes the listener rather than wait for a server
	}
	m.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(ln) }()
	m.logger.Info("pollcast is serving", "addr", "http://"+m.Addr(), "data", m.cfg.Data, "roles", strings.Join(slices.Sorted(maps.Keys(m.cfg.Roles)), ","))
	return nil
}

// startTally starts the shard workers. With a shared (Redis) store on an
// external NATS, tally processes split the shards through leases;
// otherwise this process folds every shard and catches up before serving.
func (m *Main) startTally(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, reg prometheus.Registerer) error {
	cfg := tally.Config{Shards: m.cfg.Shards, Logger: m.logger, Registerer: reg}
	// The memory store (no Redis, see tallyStore) starts empty with the
	// process, so no crash leaves it half rebuilt: it may be rebuilt with
	// the cheaper direct reads of the log.
	cfg.DirectRead = len(m.cfg.Redis) == 0
	if m.ingest != nil {
		cfg.Observe = func(rs []*votelog.Record, more uint64) error { return m.ingest.Remember(ctx, rs, more) }
	}
	shared := m.cfg.NATS != "" && m.rdb != nil
	if shared {
		leases, err := votelog.EnsureLeases(ctx, js, votelog.LeaseConfig{Replicas: m.cfg.Replicas})
		if err != nil {
			return err
		}
		cfg.Leases = leases
	}
	var err error
	if m.tally, err = tally.New(js, nc, m.store, m.catalog, cfg); err != nil {
		return err
	}
	if err := m.tally.Start(ctx); err != nil {
		return err
	}
	if shared {
		return nil
	}
	return m.tally.WaitCaughtUp(ctx)
}

// tallyStore returns the memory store, or the Redis store when Redis is configured.
func (m *Main) tallyStore() (tally.Store, error) {
	if len(m.cfg.Redis) == 0 {
		return tally.NewMemoryStore(), nil
	}
	first, err := redis.ParseURL(m.cfg.Redis[0])
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	opts := &redis.UniversalOptions{Username: first.Username, Password: first.Password, DB: first.DB, TLSConfig: first.TLSConfig}
	for _, u := range m.cfg.Redis {
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opts.Addrs = append(opts.Addrs, o.Addr)
	}
	m.rdb = redis.NewUniversalClient(opts)
	return tally.NewRedisStore(m.rdb, tally.RedisConfig{Shards: m.cfg.Shards})
}

func (m *Main) connect(name string) (*nats.Conn, error) {
	var nc *nats.Conn
	var err error
	if m.emb != nil {
		nc, err = m.emb.Connect(name)
	} else {
		nc, err = nats.Connect(m.cfg.NATS, nats.Name(name), nats.MaxReconnects(-1))
		if err != nil {
			err = fmt.Errorf("nats: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	m.ncs = append(m.ncs, nc)
	return nc, nil
}

// ensureAdminKey makes sure an admin key exists: POLLCAST_ADMIN_KEY's if
// set, else one generated and printed once.
func (m *Main) ensureAdminKey(ctx context.Context) error {
	if m.cfg.AdminKey != "" {
		if _, ok := m.catalog.KeyByHash(poll.HashKey(m.cfg.AdminKey)); ok {
			return nil
		}
		_, err := m.catalog.CreateKey(ctx, "POLLCAST_ADMIN_KEY", poll.RoleAdmin, m.cfg.AdminKey, time.Now())
		return err
	}
	for _, k := range m.catalog.Keys() {
		if k.Role == poll.RoleAdmin {
			return nil
		}
	}
	secret := poll.NewKeySecret()
	if _, err := m.catalog.CreateKey(ctx, "generated admin key", poll.RoleAdmin, secret, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "\nGenerated the admin API key (shown once, only its hash is stored):\n\n    %s\n\n", secret)
	return nil
}

// Close shuts the process down gracefully: stop taking requests, close live
// connections, stop the roles, then the log. Calling it again returns the
// first call's result.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	var errs []error
	if m.pprof != nil {
		_ = m.pprof.Close()
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.ShutdownTimeout)
		if m.hub != nil {
			m.srv.RegisterOnShutdown(m.hub.Close)
		}
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	} else if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.hub != nil {
		m.hub.Close()
	}
	if m.ingest != nil {
		m.ingest.Close()
	}
	if m.stopRetention != nil {
		m.stopRetention()
		m.retention.Wait()
	}
	if m.tally != nil {
		m.tally.Close()
	}
	if m.snaps != nil {
		if err := m.snaps.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if m.sink != nil {
		m.sink.Close()
	}
	if m.astore != nil {
		if err := m.astore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("analytics store: %w", err))
		}
	}
	if m.catalog != nil {
		m.catalog.Close()
	}
	if m.rdb != nil {
		_ = m.rdb.Close()
	}
	for _, nc := range m.ncs {
		nc.Close()
	}
	if m.emb != nil {
		m.emb.Shutdown()
	}
	return errors.Join(errs...)
}

// servePprof serves Go's profiles on their own listener when configured,
// so that they are never reachable through the public address.
func (m *Main) servePprof() error {
	if m.cfg.Pprof == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.Pprof)
	if err != nil {
		return fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.pprof.Serve(ln) }() // ends when close closes the server
	m.logger.Info("serving profiles", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}
