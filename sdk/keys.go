package sdk

import (
	"context"
	"net/http"
)

// CreateKey creates an API key (POST /v1/keys; needs an admin key). The
// returned APIKey.Key is the secret: it is shown this once.
func (c *Client) CreateKey(ctx context.Context, name string, role Role) (*APIKey, error) {
	body := struct {
		Name string `json:"name"`
		Role Role   `json:"role,omitempty"`
	}{name, role}
	var out APIKey
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/keys", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys returns every API key, without secrets (GET /v1/keys; needs an
// admin key).
func (c *Client) ListKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"keys"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/keys"}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// DeleteKey revokes an API key (DELETE /v1/keys/{id}; needs an admin key).
// A key cannot delete itself (CodeConflict).
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/v1/keys/" + seg(id)}, nil)
}
