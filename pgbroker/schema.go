package pgbroker

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// schemaSQL is the migration for DefaultPrefix, shipped as schema.sql.
//
//go:embed schema.sql
var schemaSQL string

var defaultIdent = regexp.MustCompile(`\b` + DefaultPrefix + `_`)

// SchemaSQL returns the SQL that creates the tables of prefix: the
// migration to run when the Broker is made WithoutSchemaSetup. For
// DefaultPrefix it is the module's schema.sql. It is idempotent (CREATE
// ... IF NOT EXISTS). It fails if prefix is not a valid prefix (see
// WithPrefix).
func SchemaSQL(prefix string) (string, error) {
	if err := checkPrefix(prefix); err != nil {
		return "", err
	}
	return defaultIdent.ReplaceAllLiteralString(schemaSQL, prefix+"_"), nil
}

var validPrefix = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// maxPrefixLen keeps a room's channel name ("<prefix>_" and 32 hexadecimal
// digits) within PostgreSQL's 63-byte identifiers.
const maxPrefixLen = 30

func checkPrefix(prefix string) error {
	if !validPrefix.MatchString(prefix) || len(prefix) > maxPrefixLen {
		return fmt.Errorf("pgbroker: prefix %q is not a lowercase ASCII letter followed by at most %d lowercase letters, digits or '_'", prefix, maxPrefixLen-1)
	}
	return nil
}

// setupSchema runs the migration, one process at a time: concurrent
// CREATE TABLE IF NOT EXISTS of one table can fail in PostgreSQL, so
// processes starting together take an advisory lock of the prefix first.
func (b *Broker) setupSchema(ctx context.Context) error {
	ddl, _ := SchemaSQL(b.prefix) // checked by New
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pgbroker:"+b.prefix); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
}

// checkSchema reports whether the tables of the prefix exist.
func (b *Broker) checkSchema(ctx context.Context) error {
	tables := []string{b.prefix + "_rooms", b.prefix + "_log", b.prefix + "_presence"}
	var missing []string
	err := b.pool.QueryRow(ctx, "SELECT array_agg(t) FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL", tables).Scan(&missing)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errors.New("pgbroker: tables " + strings.Join(missing, ", ") + " not found in the search_path: run the migration (SchemaSQL, schema.sql) or let New create them")
	}
	return nil
}
