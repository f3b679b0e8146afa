package main

// FerretDB v1.24's SQLite backend looks documents up by
//   _ferretdb_sjson->'$._id' = ?
// (finds, updates and deletes by _id) but creates its unique _id index on the
// expression _ferretdb_sjson->"_id". SQLite matches an expression index only on
// the same expression, so every update or delete by _id scans the whole table:
// 36 ms per update_one at 10,000 documents here, growing with the collection.
// This keeper adds the index the lookups can use to every collection table, a
// moment after FerretDB creates it: updates by _id then take about 2 ms at any
// size. FerretDB does not know the index (it is not in its metadata), so
// listIndexes is unchanged, and dropping the collection drops the table with it.

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const indexSuffix = "__hotline_id_lookup"

type idIndexKeeper struct {
	dir  string
	seen map[string]time.Time // database file -> modification time last handled
}

func newIDIndexKeeper(dir string) *idIndexKeeper {
	return &idIndexKeeper{dir: dir, seen: map[string]time.Time{}}
}

func (k *idIndexKeeper) run(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		k.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// pass visits the database files changed since the last pass: a new collection
// always writes the file (or its write-ahead log). mode=rw: a database dropped
// between the listing and the open must not be created again by this open.
func (k *idIndexKeeper) pass(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(k.dir, "*.sqlite"))
	if err != nil {
		return
	}
	present := map[string]bool{}
	for _, file := range files {
		present[file] = true
		changed := modified(file)
		if last, ok := k.seen[file]; ok && !changed.After(last) {
			continue
		}
		if err := indexTables(ctx, file); err != nil {
			// A database dropped meanwhile, or busy: the next pass tries again.
			log.Printf("id index keeper: %s: %v", filepath.Base(file), err)
			continue
		}
		k.seen[file] = changed
	}
	for file := range k.seen {
		if !present[file] {
			delete(k.seen, file)
		}
	}
}

func modified(file string) time.Time {
	latest := time.Time{}
	for _, name := range []string{file, file + "-wal"} {
		if info, err := os.Stat(name); err == nil && info.ModTime().After(latest) {
			latest = info.ModTime()
		}
	}
	return latest
}

func indexTables(ctx context.Context, file string) error {
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	missing, err := tablesWithoutIndex(ctx, db)
	if err != nil {
		return err
	}
	for _, table := range missing {
		q := fmt.Sprintf(
			`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`,
			table+indexSuffix, table,
		)
		if _, err := db.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
			return err
		}
	}
	return nil
}

func tablesWithoutIndex(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT t.name FROM sqlite_master t
		WHERE t.type = 'table' AND t.name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		  AND t.sql LIKE '%_ferretdb_sjson%'
		  AND NOT EXISTS (
		    SELECT 1 FROM sqlite_master i
		    WHERE i.type = 'index' AND i.name = t.name || ?)`, indexSuffix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		tables = append(tables, name)
	}
	return tables, rows.Err()
}
