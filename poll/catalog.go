package poll

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// CatalogConfig configures OpenCatalog.
type CatalogConfig struct {
	// Bucket is the key-value bucket name. Zero value means "pollcast_catalog".
	Bucket string
	// Replicas is the bucket's replica count. Zero value means 1.
	Replicas int
	// Logger receives watch errors. Zero value means slog.Default().
	Logger *slog.Logger
}

const (
	pollPrefix = "poll."
	keyPrefix  = "key."
	secretKey  = "secret"
)

type pollEntry struct {
	p   *Poll
	rev uint64
}

// Catalog is the poll catalog: poll definitions, API keys and the server
// secret, stored in a JetStream key-value bucket and cached in memory. Reads
// (Poll, KeyByHash, ...) come from the cache and never do I/O; writes go to
// the bucket and are visible in this node's cache when they return, and on
// every other node as soon as its watch delivers them.
//
// A Catalog is safe for concurrent use.
type Catalog struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu       sync.RWMutex
	polls    map[string]pollEntry
	keys     map[string]*APIKey // by hash
	keyRev   map[string]uint64  // by key ID
	secret   []byte
	watchers []func(*Poll)

	cancel context.CancelFunc
	done   chan struct{}
}

// OpenCatalog creates (or opens) the bucket, loads it into memory, and keeps
// watching it until Close.
func OpenCatalog(ctx context.Context, js jetstream.JetStream, cfg CatalogConfig) (*Catalog, error) {
	cfg.Bucket = cmp.Or(cfg.Bucket, "pollcast_catalog")
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, History: 1, Replicas: cfg.Replicas,
		Description: "pollcast poll catalog",
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: open bucket: %w", err)
	}
	c := &Catalog{
		kv: kv, log: cfg.Logger,
		polls: map[string]pollEntry{}, keys: map[string]*APIKey{}, keyRev: map[string]uint64{},
		done: make(chan struct{}),
	}
	wctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("catalog: watch: %w", err)
	}
	// Load what is there: the watcher delivers every current value, then nil.
	for loading := true; loading; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("catalog: watch closed while loading")
			}
			if e == nil {
				loading = false
				continue
			}
			c.apply(e)
		case <-ctx.Done():
			cancel()
			_ = w.Stop()
			return nil, fmt.Errorf("catalog: load: %w", ctx.Err())
		}
	}
	go c.watch(wctx, w)
	if err := c.ensureSecret(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Catalog) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(c.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				c.apply(e)
			}
		case <-ctx.Done():
			return
		}
	}
}

// apply folds one bucket entry into the cache, ignoring entries older than
// what the cache holds (this node's own writes are cached before the watch
// delivers them).
func (c *Catalog) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, pollPrefix):
		if deleted {
			return // polls are soft-deleted (DeletedAt); a purge only happens by hand
		}
		var p Poll
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			c.log.Error("catalog: bad poll entry", "key", key, "err", err)
			return
		}
		c.storePoll(&p, e.Revision())
	case strings.HasPrefix(key, keyPrefix):
		id := strings.TrimPrefix(key, keyPrefix)
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.Revision() <= c.keyRev[id] {
			return
		}
		c.keyRev[id] = e.Revision()
		for h, k := range c.keys {
			if k.ID == id {
				delete(c.keys, h)
			}
		}
		if deleted {
			return
		}
		var k APIKey
		if err := json.Unmarshal(e.Value(), &k); err != nil {
			c.log.Error("catalog: bad key entry", "key", key, "err", err)
			return
		}
		c.keys[k.Hash] = &k
	case key == secretKey && !deleted:
		c.mu.Lock()
		c.secret = slices.Clone(e.Value())
		c.mu.Unlock()
	}
}

func (c *Catalog) storePoll(p *Poll, rev uint64) {
	c.mu.Lock()
	if old, ok := c.polls[p.ID]; ok && old.rev >= rev {
		c.mu.Unlock()
		return
	}
	c.polls[p.ID] = pollEntry{p: p, rev: rev}
	watchers := c.watchers
	c.mu.Unlock()
	for _, fn := range watchers {
		fn(p)
	}
}

// OnChange registers fn to be called with the new definition of every poll
// created, changed or deleted after this call, from this node or another. fn
// is called from the catalog's goroutine (or the writer's), must not block,
// and must not modify the poll.
func (c *Catalog) OnChange(fn func(*Poll)) {
	c.mu.Lock()
	c.watchers = append(c.watchers, fn)
	c.mu.Unlock()
}

// Close stops watching the bucket.
func (c *Catalog) Close() {
	c.cancel()
	<-c.done
}

// Poll returns the poll with the given ID, unless it does not exist or was
// deleted. The result is a shared snapshot: do not modify it.
func (c *Catalog) Poll(id string) (*Poll, bool) {
	c.mu.RLock()
	e, ok := c.polls[id]
	c.mu.RUnlock()
	if !ok || e.p.DeletedAt != nil {
		return nil, false
	}
	return e.p, true
}

// PollOrDeleted returns the poll with the given ID even if it was deleted:
// its owner may still export its votes. The result is a shared snapshot.
func (c *Catalog) PollOrDeleted(id string) (*Poll, bool) {
	c.mu.RLock()
	e, ok := c.polls[id]
	c.mu.RUnlock()
	return e.p, ok
}

// Fetch is Poll for callers that must not answer "not found" for a poll
// created a moment ago on another node: on a cache miss it reads the
// bucket and caches what it finds. It costs I/O only on a miss.
func (c *Catalog) Fetch(ctx context.Context, id string) (*Poll, bool) {
	if p, ok := c.Poll(id); ok {
		return p, true
	}
	if id == "" || strings.ContainsAny(id, ".*> ") {
		return nil, false
	}
	e, err := c.kv.Get(ctx, pollPrefix+id)
	if err != nil {
		return nil, false
	}
	var p Poll
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, false
	}
	c.storePoll(&p, e.Revision())
	return c.Poll(id)
}

// Deleted reports whether the poll was deleted. Unknown polls are not: a
// poll created on another node may not have reached this one yet.
func (c *Catalog) Deleted(id string) bool {
	c.mu.RLock()
	e, ok := c.polls[id]
	c.mu.RUnlock()
	return ok && e.p.DeletedAt != nil
}

// ListFilter selects polls for List.
type ListFilter struct {
	// Owner limits the list to polls created with this key ID. Zero value means every owner.
	Owner string
	// Status limits the list to polls with this status now. Zero value means any status.
	Status Status
	// After is the cursor: the list starts after the poll with this ID in
	// list order (newest first). Zero value means from the start.
	After string
	// Limit caps the number of polls returned. Zero value means no limit.
	Limit int
}

// List returns polls, newest first, and whether more remain after them.
func (c *Catalog) List(f ListFilter, now time.Time) ([]*Poll, bool) {
	c.mu.RLock()
	all := make([]*Poll, 0, len(c.polls))
	var after *Poll
	for _, e := range c.polls {
		if e.p.DeletedAt != nil {
			continue
		}
		if e.p.ID == f.After {
			after = e.p
		}
		if f.Owner != "" && e.p.Owner != f.Owner {
			continue
		}
		if f.Status != "" && e.p.StatusAt(now) != f.Status {
			continue
		}
		all = append(all, e.p)
	}
	c.mu.RUnlock()
	newestFirst := func(a, b *Poll) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	}
	slices.SortFunc(all, newestFirst)
	if f.After != "" {
		if after == nil {
			return nil, false
		}
		i, _ := slices.BinarySearchFunc(all, after, newestFirst)
		for i < len(all) && newestFirst(all[i], after) <= 0 {
			i++
		}
		all = all[i:]
	}
	if f.Limit > 0 && len(all) > f.Limit {
		return all[:f.Limit], true
	}
	return all, false
}

// CreatePoll stores a new poll.
func (c *Catalog) CreatePoll(ctx context.Context, p *Poll) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("catalog: encode poll: %w", err)
	}
	rev, err := c.kv.Create(ctx, pollPrefix+p.ID, data)
	if err != nil {
		return fmt.Errorf("catalog: create poll: %w", err)
	}
	c.storePoll(p, rev)
	return nil
}

// UpdatePoll changes a poll with fn, which gets a private copy of the current
// definition and returns the new one or an error to abort. It is retried when
// another writer changed the poll meanwhile. It returns ErrNotFound for a
// missing or deleted poll.
func (c *Catalog) UpdatePoll(ctx context.Context, id string, fn func(*Poll) (*Poll, error)) (*Poll, error) {
	for attempt := 0; ; attempt++ {
		e, err := c.kv.Get(ctx, pollPrefix+id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("catalog: get poll: %w", err)
		}
		var cur Poll
		if err := json.Unmarshal(e.Value(), &cur); err != nil {
			return nil, fmt.Errorf("catalog: decode poll: %w", err)
		}
		if cur.DeletedAt != nil {
			return nil, ErrNotFound
		}
		next, err := fn(&cur)
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("catalog: encode poll: %w", err)
		}
		rev, err := c.kv.Update(ctx, pollPrefix+id, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("catalog: update poll: %w", err)
		}
		c.storePoll(next, rev)
		return next, nil
	}
}

// Secret returns the server secret: 32 random bytes made on first start and
// shared by every node, the key of the HMACs that stand in for voter
// identities and raw IPs in the log.
func (c *Catalog) Secret() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.secret
}

func (c *Catalog) ensureSecret(ctx context.Context) error {
	if len(c.Secret()) > 0 {
		return nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	enc := []byte(base64.RawStdEncoding.EncodeToString(b))
	if _, err := c.kv.Create(ctx, secretKey, enc); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("catalog: create secret: %w", err)
	}
	e, err := c.kv.Get(ctx, secretKey) // another node may have won the race
	if err != nil {
		return fmt.Errorf("catalog: read secret: %w", err)
	}
	c.mu.Lock()
	c.secret = slices.Clone(e.Value())
	c.mu.Unlock()
	return nil
}

// Ping checks that the bucket answers.
func (c *Catalog) Ping(ctx context.Context) error {
	if _, err := c.kv.Status(ctx); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}
