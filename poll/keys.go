package poll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Role is what an API key may do.
type Role string

const (
	// RoleAdmin may do everything: every poll, and managing API keys.
	RoleAdmin Role = "admin"
	// RoleOwner may create polls and manage the polls it created.
	RoleOwner Role = "owner"
)

// APIKey is a stored API key. Only the SHA-256 of the secret is kept.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// HashKey returns the stored form of an API key secret.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// KeyByHash returns the API key whose secret hashes to hash.
func (c *Catalog) KeyByHash(hash string) (*APIKey, bool) {
	c.mu.RLock()
	k, ok := c.keys[hash]
	c.mu.RUnlock()
	return k, ok
}

// Keys returns every API key, oldest first.
func (c *Catalog) Keys() []*APIKey {
	c.mu.RLock()
	out := make([]*APIKey, 0, len(c.keys))
	for _, k := range c.keys {
		out = append(out, k)
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b *APIKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// CreateKey stores a new API key for secret and returns it.
func (c *Catalog) CreateKey(ctx context.Context, name string, role Role, secret string, now time.Time) (*APIKey, error) {
	if role != RoleAdmin && role != RoleOwner {
		return nil, Invalid("role", "must be admin or owner")
	}
	k := &APIKey{ID: NewID(6), Name: name, Role: role, Hash: HashKey(secret), CreatedAt: now.UTC()}
	data, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode key: %w", err)
	}
	rev, err := c.kv.Create(ctx, keyPrefix+k.ID, data)
	if err != nil {
		return nil, fmt.Errorf("catalog: create key: %w", err)
	}
	c.mu.Lock()
	c.keys[k.Hash] = k
	c.keyRev[k.ID] = max(c.keyRev[k.ID], rev)
	c.mu.Unlock()
	return k, nil
}

// DeleteKey removes an API key. It returns ErrNotFound for an unknown ID.
func (c *Catalog) DeleteKey(ctx context.Context, id string) error {
	c.mu.RLock()
	found := false
	for _, k := range c.keys {
		found = found || k.ID == id
	}
	c.mu.RUnlock()
	if !found {
		return ErrNotFound
	}
	if err := c.kv.Delete(ctx, keyPrefix+id); err != nil {
		return fmt.Errorf("catalog: delete key: %w", err)
	}
	c.mu.Lock()
	for h, k := range c.keys {
		if k.ID == id {
			delete(c.keys, h)
		}
	}
	c.mu.Unlock()
	return nil
}

// NewKeySecret returns a new random API key secret.
func NewKeySecret() string {
	return "pk_" + NewID(24)
}
