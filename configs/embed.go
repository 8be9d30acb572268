// Package configs holds the embedded default configuration that `make run`
// starts voxgate with.
package configs

import _ "embed"

// Default is configs/default.yaml.
//
//go:embed default.yaml
var Default []byte

// DefaultName is how errors in the embedded config name its file.
const DefaultName = "configs/default.yaml"

// Dialplan is configs/dialplan.yaml, the dialplan used when the config
// names none.
//
//go:embed dialplan.yaml
var Dialplan []byte

// DialplanName is how errors in the embedded dialplan name its file.
const DialplanName = "configs/dialplan.yaml"
