package webclient

import (
	_ "embed"
	"net/http"
)

// openAPI describes every route of the route table (Routes): their
// parameters, bodies, answers and the error schema. A test checks that the
// two list the same routes and that real answers fit it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI is the REST API's OpenAPI 3.1 description (JSON).
func OpenAPI() []byte { return openAPI }

// handleOpenAPI serves the description: no token needed (it holds no
// secrets, and clients need it to find their way).
func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
