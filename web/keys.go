package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/pollcast/pollcast/poll"
)

type keyInput struct {
	Name string    `json:"name"`
	Role poll.Role `json:"role"`
}

type keyView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      poll.Role `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Key is the secret, shown once when the key is created.
	Key string `json:"key,omitempty"`
}

func viewKey(k *poll.APIKey) keyView {
	return keyView{ID: k.ID, Name: k.Name, Role: k.Role, CreatedAt: k.CreatedAt}
}

func (s *server) createKey(c *gin.Context) {
	in := keyInput{Role: poll.RoleOwner}
	if err := decodeJSON(c, maxBody, &in); err != nil {
		s.fail(c, err)
		return
	}
	if len(in.Name) > 200 {
		s.fail(c, poll.Invalid("name", "at most 200 characters"))
		return
	}
	secret := poll.NewKeySecret()
	k, err := s.Catalog.CreateKey(c.Request.Context(), in.Name, in.Role, secret, time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	v := viewKey(k)
	v.Key = secret
	c.Header("Cache-Control", "no-store")
	writeJSON(c, http.StatusCreated, v)
}

func (s *server) listKeys(c *gin.Context) {
	keys := s.Catalog.Keys()
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i] = viewKey(k)
	}
	writeJSON(c, http.StatusOK, map[string]any{"keys": out})
}

func (s *server) deleteKey(c *gin.Context) {
	if c.Param("id") == keyOf(c).ID {
		s.fail(c, poll.Errorf(poll.ErrConflict, "a key cannot delete itself"))
		return
	}
	if err := s.Catalog.DeleteKey(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
