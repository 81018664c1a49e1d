// Package config loads, checks and documents nudgebot's configuration: a
// strict YAML file (see config.example.yaml) with environment overrides for
// the secrets and for the values containers like to set. It also holds the
// Slack app manifest the bot expects, so the two cannot drift apart.
//
// Every problem is reported at once, each with its file and line and with
// what to do about it; a token value never appears in an error or a log.
//
// The package imports nudges/ for shared types and nothing from bot/ or
// storage/.
package config
