package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is everything `pollcast serve` can be told.
type Config struct {
	Addr     string
	Data     string
	VoteRate float64
	Shards   int
	Region   string
	// ClickHouse is the DSN of the analytics store; empty means the SQLite
	// file under Data.
	ClickHouse string
	// Redis holds the URLs of the Redis tally store (several: a Redis
	// Cluster); empty means the memory store, rebuilt from the log at start.
	Redis []string
	// NATS is the URL of an external NATS cluster with JetStream; empty
	// means the embedded server under Data.
	NATS string
	// Replicas is the replica count of the stream and buckets (3 on a cluster).
	Replicas int
	// Roles are the roles this process runs (all by default).
	Roles          map[string]bool
	TrustedProxies []netip.Prefix
	LogLevel       string
	LogFormat      string
	// AdminKey is POLLCAST_ADMIN_KEY: the first admin API key. Empty means
	// "generate one on first start and print it once".
	AdminKey string
	// PublicURL is the scheme and host users reach this server at, or ""
	// for each request's Host (web.Config.PublicURL).
	PublicURL string
	// Pprof is the address of a separate listener for net/http/pprof, or
	// "" for none. Profiles are for operators: keep it on loopback.
	Pprof string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Fsync is how often the embedded log flushes to disk; zero means
	// always, before each acknowledgement (votelog.EmbeddedConfig).
	Fsync time.Duration
	// IdempotencyWindow is how long a retry with the same idempotency key
	// is recognised as the same vote.
	IdempotencyWindow time.Duration
	// LivePingInterval and LivePingTimeout tune how soon a live socket that
	// stopped answering is closed. Zero values mean the realtime defaults.
	LivePingInterval, LivePingTimeout time.Duration
	// BodyReadTimeout bounds the reading of a request body (web.Config).
	// Zero value means web's default.
	BodyReadTimeout time.Duration
	// MaxLivePerIP caps the live connections of one client address (an
	// IPv6 /64) on this node; zero means no cap.
	MaxLivePerIP int
	// MaxTokenTTL is how far ahead a voter token's exp may lie. Zero value
	// means ingest's default.
	MaxTokenTTL time.Duration
	// PurgeTimeout bounds a purge of a poll. Zero value means web's default.
	PurgeTimeout time.Duration
	// SnapshotInterval is how often the memory tally and voter registry
	// are saved under Data/snapshots (and at shutdown). Zero means never:
	// a restart reads the whole log.
	SnapshotInterval time.Duration
	// LogRetention is the age past which votes leave the log, once every
	// fold saved them. Zero means the log keeps everything.
	LogRetention time.Duration
	// RetentionInterval is how often the log is trimmed. Zero means 1m.
	RetentionInterval time.Duration
}

// setting is one row of the configuration table: a flag, its environment
// fallback, its default and its help.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "POLLCAST_ADDR", "127.0.0.1:8080", "address to serve HTTP on (host:port; port 0 picks a free one)"},
	{"data", "POLLCAST_DATA", "./data", "directory for the vote log, catalog and analytics files"},
	{"fsync", "POLLCAST_FSYNC", "always", "when the embedded vote log flushes to disk: always (before each vote is answered 202) or an interval such as 1s or 2m"},
	{"vote-rate", "POLLCAST_VOTE_RATE", "50", "per-client-IP vote rate limit in votes/s, bursts of 4x; 0 turns it off"},
	{"shards", "POLLCAST_SHARDS", "16", "number of tally shards (fixed for the life of a data directory)"},
	{"region", "POLLCAST_REGION", "local", "deployment region this node tags votes with"},
	{"clickhouse", "POLLCAST_CLICKHOUSE", "", "ClickHouse DSN for analytics (clickhouse://host:9000/db); default: a SQLite file under --data"},
	{"nats", "POLLCAST_NATS", "", "URL(s) of an external NATS cluster with JetStream (nats://h1:4222,nats://h2:4222); default: embedded"},
	{"replicas", "POLLCAST_REPLICAS", "1", "replicas of the vote stream and catalog on an external NATS cluster (3 for R3)"},
	{"roles", "POLLCAST_ROLES", "ingest,tally,realtime,analytics,web", "roles this process runs"},
	{"redis", "POLLCAST_REDIS", "", "Redis URL(s) for the tally store (redis://host:6379/0; comma-separated for a cluster); default: memory"},
	{"trusted-proxies", "POLLCAST_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed"},
	{"log-level", "POLLCAST_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"log-format", "POLLCAST_LOG_FORMAT", "text", "text or json"},
	{"shutdown-timeout", "POLLCAST_SHUTDOWN_TIMEOUT", "10s", "how long a graceful shutdown may take"},
	{"public-url", "POLLCAST_PUBLIC_URL", "", "scheme and host users reach this server at (https://polls.example.com), for hosted-page links and own-page checks; default: each request's Host"},
	{"idempotency-window", "POLLCAST_IDEMPOTENCY_WINDOW", "24h", "how long a retry with the same idempotency_key is the same vote, on any node and across restarts"},
	{"pprof", "POLLCAST_PPROF", "", "address to serve Go's /debug/pprof profiles on (127.0.0.1:6060); default: off"},
	{"body-read-timeout", "POLLCAST_BODY_READ_TIMEOUT", "10s", "how long a client may take to send a request body; a slower one gets 408 and the connection is closed"},
	{"max-live-per-ip", "POLLCAST_MAX_LIVE_PER_IP", "500", "live connections (WebSocket and SSE together) one client address (IPv6: one /64) may hold on this node; 0 turns the cap off"},
	{"max-token-ttl", "POLLCAST_MAX_TOKEN_TTL", "24h", "how far ahead of now a voter token's exp may lie; tokens without exp are refused"},
	{"snapshot-interval", "POLLCAST_SNAPSHOT_INTERVAL", "1m", "how often the memory counters and voters are saved under --data (and at shutdown), so a restart reads only the log after them; 0 turns snapshots off"},
	{"log-retention", "POLLCAST_LOG_RETENTION", "", "age past which votes leave the log once counters, voters and analytics saved them (720h); default: keep every vote"},
}

// parseConfig reads flags, then the environment for every flag not given.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("pollcast serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, s := range settings {
		vals[s.flag] = fs.String(s.flag, s.def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pollcast serve [flags]\n\nRuns every role of pollcast in one process.\nPOLLCAST_ADMIN_KEY sets the first admin API key.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		if v := getenv(s.env); v != "" && !given[s.flag] {
			*vals[s.flag] = v
		}
	}
	var c Config
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", name, err))
		}
	}
	c.Addr = *vals["addr"]
	c.Data = *vals["data"]
	c.Region = *vals["region"]
	c.ClickHouse = *vals["clickhouse"]
	for _, u := range strings.Split(*vals["redis"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			_, err := redis.ParseURL(u)
			check("redis", err)
			c.Redis = append(c.Redis, u)
		}
	}
	c.Pprof = *vals["pprof"]
	if u := strings.TrimRight(*vals["public-url"], "/"); u != "" {
		pu, err := url.Parse(u)
		if err == nil && (pu.Scheme != "http" && pu.Scheme != "https" || pu.Host == "" || pu.Path != "" || pu.RawQuery != "") {
			err = errors.New("want a scheme and host only, such as https://polls.example.com")
		}
		check("public-url", err)
		c.PublicURL = u
	}
	c.LogLevel = *vals["log-level"]
	c.LogFormat = *vals["log-format"]
	c.AdminKey = getenv("POLLCAST_ADMIN_KEY")
	_, err := fmt.Sscan(*vals["vote-rate"], &c.VoteRate)
	if err == nil && c.VoteRate < 0 {
		err = errors.New("must be 0 or more")
	}
	check("vote-rate", err)
	_, err = fmt.Sscan(*vals["shards"], &c.Shards)
	if err == nil && (c.Shards < 1 || c.Shards > 1024) {
		err = errors.New("must be 1 to 1024")
	}
	check("shards", err)
	c.ShutdownTimeout, err = time.ParseDuration(*vals["shutdown-timeout"])
	check("shutdown-timeout", err)
	c.BodyReadTimeout, err = positiveDuration(*vals["body-read-timeout"])
	check("body-read-timeout", err)
	_, err = fmt.Sscan(*vals["max-live-per-ip"], &c.MaxLivePerIP)
	if err == nil && c.MaxLivePerIP < 0 {
		err = errors.New("must be 0 or more")
	}
	check("max-live-per-ip", err)
	c.MaxTokenTTL, err = positiveDuration(*vals["max-token-ttl"])
	check("max-token-ttl", err)
	c.IdempotencyWindow, err = time.ParseDuration(*vals["idempotency-window"])
	if err == nil && c.IdempotencyWindow < time.Minute {
		err = errors.New("must be at least 1m")
	}
	check("idempotency-window", err)
	for _, p := range strings.Split(*vals["trusted-proxies"], ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			p += map[bool]string{true: "/32", false: "/128"}[!strings.Contains(p, ":")]
		}
		pfx, err := netip.ParsePrefix(p)
		check("trusted-proxies", err)
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	c.NATS = strings.TrimSpace(*vals["nats"])
	c.Fsync, err = parseFsync(*vals["fsync"])
	if err == nil && c.Fsync != 0 && c.NATS != "" {
		err = errors.New("sets the embedded log's flushes only; with --nats, set sync_interval in the NATS servers' jetstream block")
	}
	check("fsync", err)
	_, err = fmt.Sscan(*vals["replicas"], &c.Replicas)
	if err == nil && (c.Replicas < 1 || c.Replicas > 5) {
		err = errors.New("must be 1 to 5")
	}
	check("replicas", err)
	check("roles", c.parseRoles(*vals["roles"]))
	c.SnapshotInterval, err = time.ParseDuration(*vals["snapshot-interval"])
	if err == nil && c.SnapshotInterval < 0 {
		err = errors.New("must be 0 or more")
	}
	check("snapshot-interval", err)
	check("log-retention", c.parseRetention(*vals["log-retention"]))

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		check("log-level", errors.New("must be debug, info, warn or error"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		check("log-format", errors.New("must be text or json"))
	}
	if c.Data == "" {
		check("data", errors.New("must not be empty"))
	}
	return c, errors.Join(errs...)
}

// positiveDuration parses a duration that must be more than zero.
func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = errors.New("must be more than 0")
	}
	return d, err
}

// parseFsync reads --fsync: "always" is zero, else a positive duration.
func parseFsync(v string) (time.Duration, error) {
	if strings.EqualFold(strings.TrimSpace(v), "always") {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want always or an interval such as 1s or 2m", v)
	}
	return d, nil
}

// parseRetention reads --log-retention, once the roles, the stores and
// the snapshot interval are known.
func (c *Config) parseRetention(retention string) error {
	if retention == "" {
		return nil
	}
	var err error
	if c.LogRetention, err = time.ParseDuration(retention); err != nil {
		return err
	}
	switch {
	case c.LogRetention <= 0:
		return errors.New("want a positive duration such as 720h")
	case !c.Roles["tally"] || !c.Roles["analytics"]:
		return errors.New("set it on the processes running the tally and analytics roles, which know what they saved")
	case len(c.Redis) == 0 && c.SnapshotInterval == 0:
		return errors.New("the memory counters and voters come back from snapshots once old votes left the log: keep --snapshot-interval above 0")
	}
	return nil
}

// Roles a process can run.
var allRoles = []string{"ingest", "tally", "realtime", "analytics", "web"}

// parseRoles reads --roles and checks that the roles can work together.
func (c *Config) parseRoles(list string) error {
	c.Roles = map[string]bool{}
	for _, r := range strings.Split(list, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(allRoles, r) {
			return fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(allRoles, ", "))
		}
		c.Roles[r] = true
	}
	switch all := len(c.Roles) == len(allRoles); {
	case len(c.Roles) == 0:
		return errors.New("name at least one role")
	case c.Roles["web"] && (!c.Roles["ingest"] || !c.Roles["realtime"]):
		return errors.New("web serves votes and live results: it needs ingest and realtime in the same process")
	case !all && c.NATS == "":
		return errors.New("separate roles share the log: they need --nats (the embedded log lives in one process)")
	case !all && len(c.Redis) == 0:
		return errors.New("separate roles share counters and voters: they need --redis")
	case c.ClickHouse == "" && c.Roles["analytics"] != c.Roles["web"]:
		return errors.New("the SQLite analytics file is read by web and written by analytics in one process: run them together or use --clickhouse")
	}
	return nil
}

// AllRoles sets every role (the single-process default).
func (c *Config) AllRoles() {
	c.Roles = map[string]bool{}
	for _, r := range allRoles {
		c.Roles[r] = true
	}
}
