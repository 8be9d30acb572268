package webclient

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
)

// APIError is the body of every error answer under /api/: the message and
// the HTTP status again; Scope names the scope a 403 wanted.
type APIError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
	Scope  Scope  `json:"scope,omitempty"`
}

// writeError answers code with an APIError.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, APIError{Error: msg, Status: code})
}

// mountAPINotFound answers what no route matches under /api/: 405 with
// Allow when the path is a route's with another method, else 404. (net/http's
// own would be plain text, and for any path a 405 "GET, HEAD" from the
// page's file server.)
func mountAPINotFound(mux *http.ServeMux) {
	methods := []string{"DELETE", "GET", "PATCH", "POST", "PUT", "OPTIONS"}
	catchAll := map[string]bool{"GET /": true}
	for _, m := range methods {
		catchAll[m+" /api/"] = true
	}
	notFound := func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pattern := mux.Handler(r2); !catchAll[pattern] {
				allow = append(allow, m)
				if m == "GET" {
					allow = append(allow, "HEAD")
				}
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, defaultMessage(http.StatusMethodNotAllowed, r, w.Header().Get("Allow")))
			return
		}
		writeError(w, http.StatusNotFound, defaultMessage(http.StatusNotFound, r, ""))
	}
	// One pattern per method: a method-less "/api/" would conflict with the
	// page's "GET /". Other methods get net/http's 405, made JSON by
	// jsonErrors.
	for _, m := range methods {
		mux.HandleFunc(m+" /api/", notFound)
	}
}

// jsonErrors makes every error answer under /api/ JSON: the mux's own 404
// and 405 (plain text from net/http; 405 keeps its Allow header), the page
// file server's 404 for an unknown GET, and a panic's 500 (logged).
func (s *Server) jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		jw := &jsonErrorWriter{ResponseWriter: w, r: r}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("REST API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !jw.wrote {
					writeError(w, http.StatusInternalServerError, "internal error (logged)")
				}
			}
		}()
		next.ServeHTTP(jw, r)
	})
}

// jsonErrorWriter replaces a plain-text error answer with APIError.
type jsonErrorWriter struct {
	http.ResponseWriter
	r       *http.Request
	wrote   bool // the header went out
	replace bool // the body is dropped: the JSON went instead
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.Header()
	if code >= 400 && !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		w.replace = true
		h.Del("X-Content-Type-Options")
		writeError(w.ResponseWriter, code, defaultMessage(code, w.r, h.Get("Allow")))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.replace {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// defaultMessage says what a status means for r.
func defaultMessage(code int, r *http.Request, allow string) string {
	switch code {
	case http.StatusNotFound:
		return fmt.Sprintf("no such endpoint: %s %s (the API is described at %s/openapi.json)", r.Method, r.URL.Path, APIPrefix)
	case http.StatusMethodNotAllowed:
		return fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)
	}
	return strings.ToLower(http.StatusText(code))
}
