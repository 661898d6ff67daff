//go:build tools

// Package tools pins Traefik's command, which scripts/setup.sh builds from this module.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
