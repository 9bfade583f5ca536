package web

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the OpenAPI 3.1 document of every endpoint, schema and error
// code of the API, written by hand in openapi.json beside this file and
// served at GET /openapi.json. A test fails when the router and the
// document disagree on the routes, or the document on the error codes.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *server) openapi(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", OpenAPI)
}
