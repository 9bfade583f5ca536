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
	// LivePingInterval and LivePingTimeout tune how soon a live socket that
	// stopped answering is closed. Zero values mean the realtime defaults.
	LivePingInterval, LivePingTimeout time.Duration
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
	{"pprof", "POLLCAST_PPROF", "", "address to serve Go's /debug/pprof profiles on (127.0.0.1:6060); default: off"},
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
