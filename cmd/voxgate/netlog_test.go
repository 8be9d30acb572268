package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// netLogExcerpt reads a Chromium NetLog (--log-net-log=path), which may be
// cut short (Chromium killed), and returns the events that say why a
// request or connection ended: errors, cancellations, HTTP/2 resets,
// GOAWAYs, session ends and network changes, and every event naming one
// of match. At most
// max lines.
func netLogExcerpt(path string, max int, match ...string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("netlog %s: no constants line: %w", path, err)
	}
	// {"constants":{...},  : decode the object after the key.
	i := strings.Index(head, "{\"logEventTypes\"")
	if j := strings.Index(head, `"constants":`); j >= 0 {
		i = j + len(`"constants":`)
	}
	if i < 0 {
		return "", fmt.Errorf("netlog %s: no constants", path)
	}
	var consts struct {
		EventTypes  map[string]int `json:"logEventTypes"`
		SourceTypes map[string]int `json:"logSourceType"`
	}
	if err := json.NewDecoder(strings.NewReader(head[i:])).Decode(&consts); err != nil {
		return "", fmt.Errorf("netlog %s: constants: %w", path, err)
	}
	names := make(map[int]string, len(consts.EventTypes))
	for k, v := range consts.EventTypes {
		names[v] = k
	}
	sources := make(map[int]string, len(consts.SourceTypes))
	for k, v := range consts.SourceTypes {
		sources[v] = k
	}
	var out []string
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimSuffix(strings.TrimSpace(line), ",")
		if strings.HasPrefix(line, "{") {
			var e struct {
				Time   string          `json:"time"`
				Type   int             `json:"type"`
				Phase  int             `json:"phase"`
				Params json.RawMessage `json:"params"`
				Source struct {
					ID   int `json:"id"`
					Type int `json:"type"`
				} `json:"source"`
			}
			if json.Unmarshal([]byte(line), &e) == nil {
				name, params := names[e.Type], string(e.Params)
				keep := strings.Contains(params, `"net_error"`) && !strings.Contains(params, `"net_error":0`) ||
					strings.Contains(name, "CANCEL") || strings.Contains(name, "RST_STREAM") ||
					strings.Contains(name, "GOAWAY") || strings.Contains(name, "HTTP2_SESSION_CLOSE") ||
					strings.Contains(name, "HTTP2_SESSION_POOL_REMOVE") || name == "HTTP2_SESSION" && e.Phase == 2 ||
					strings.HasPrefix(name, "NETWORK_") && strings.Contains(name, "CHANGED")
				for _, m := range match {
					keep = keep || strings.Contains(params, m)
				}
				if keep && len(out) < max {
					if len(params) > 300 {
						params = params[:300] + "..."
					}
					out = append(out, fmt.Sprintf("%s %s#%d %s %s", e.Time, sources[e.Source.Type], e.Source.ID, name, params))
				}
			}
		}
		if err != nil {
			break
		}
	}
	return strings.Join(out, "\n"), nil
}
