// Package ext holds the two empty structs Traefik's dynamic configuration embeds.
package ext

// HTTP extends dynamic.HTTPConfiguration; empty in Traefik's own builds.
type HTTP struct{}

// Router extends dynamic.Router; empty in Traefik's own builds.
type Router struct{}
