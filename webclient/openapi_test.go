package webclient

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// openAPIDoc is the part of openapi.json the checks read.
type openAPIDoc struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
}

type openAPIOperation struct {
	Scope      string                      `json:"x-voxgate-scope"`
	Alias      string                      `json:"x-voxgate-alias"`
	Security   []map[string]any            `json:"security"`
	Parameters []struct{ Name, In string } `json:"parameters"`
	Responses  map[string]any              `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

var wildcard = regexp.MustCompile(`\{([^}]+)\}`)

// Every route of the table is in openapi.json with its scope, alias and
// path parameters, and every operation there is a route.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	s, _ := newGuestWeb(t, &guestHandler{})
	inTable := map[string]bool{}
	for _, rt := range s.Routes() {
		key := rt.Method + " " + rt.Path
		if inTable[key] {
			t.Errorf("%s is in the route table twice", key)
		}
		inTable[key] = true
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s is not in openapi.json", key)
			continue
		}
		if want := string(rt.Scope); op.Scope != want && !(want == "" && op.Scope == "public") {
			t.Errorf("%s: x-voxgate-scope %q, the table says %q", key, op.Scope, rt.Scope)
		}
		if op.Alias != rt.Alias {
			t.Errorf("%s: x-voxgate-alias %q, the table says %q", key, op.Alias, rt.Alias)
		}
		if (rt.Scope == ScopePublic) != (len(op.Security) == 0) {
			t.Errorf("%s: security %v for scope %q", key, op.Security, rt.Scope)
		}
		var params, want []string
		for _, p := range op.Parameters {
			if p.In == "path" {
				params = append(params, p.Name)
			}
		}
		for _, m := range wildcard.FindAllStringSubmatch(rt.Path, -1) {
			want = append(want, m[1])
		}
		sort.Strings(params)
		sort.Strings(want)
		if !slices.Equal(params, want) {
			t.Errorf("%s: path parameters %v, want %v", key, params, want)
		}
		if rt.Scope != ScopePublic && (op.Responses["401"] == nil || op.Responses["403"] == nil) {
			t.Errorf("%s needs a token but documents no 401 and 403", key)
		}
		if op.Responses["default"] == nil {
			t.Errorf("%s: no default (error) answer", key)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if key := strings.ToUpper(method) + " " + path; !inTable[key] {
				t.Errorf("openapi.json describes %s, which is no route", key)
			}
		}
	}
}

// Every $ref of openapi.json points at something in it.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				var node any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				if node == nil {
					t.Errorf("$ref %s resolves to nothing", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// The description is served without a token, as embedded.
func TestOpenAPIServedWithoutToken(t *testing.T) {
	_, base := newGuestWeb(t, &guestHandler{})
	res, body := do(t, "GET", base+"/api/v1/openapi.json", "", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal([]byte(body), openAPI) {
		t.Fatalf("GET /api/v1/openapi.json: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
