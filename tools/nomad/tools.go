//go:build tools

// Package tools pins the Nomad main package for `go build`.
package tools

import _ "github.com/hashicorp/nomad"
