//go:build nopostgres

package main

// Stands in for postgres.go in a build without the PostgreSQL engine
// (-tags nopostgres): every path to PostgreSQL answers that this binary
// has none, and pgx is not linked.

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
)

var errNoPostgres = ops.Mark(ops.ErrConfig, errors.New("this build of nudgebot has no PostgreSQL support (it was built with -tags nopostgres): use a release build for storage.driver: postgres, or storage.driver: bbolt"))

func openPostgres(config.Config, *slog.Logger, func(string) string) (runStore, *storage.Keys, error) {
	return nil, nil, errNoPostgres
}

func checkPostgres(context.Context, config.Config, func(string) string, io.Writer) []error {
	return []error{errNoPostgres}
}

func migrateToPostgres(context.Context, ops.Tool, string, int, io.Writer, io.Writer) error {
	return errNoPostgres
}

func migrateToFile(context.Context, ops.Tool, string, int, io.Writer, io.Writer) error {
	return errNoPostgres
}
