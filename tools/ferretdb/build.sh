#!/usr/bin/env bash
# Builds the dev store into OUT: FerretDB v1.24.2 embedded in main.go, with four
# fixes: two about finding a document by its _id, one about writers queueing,
# one about update commands of many statements.
#
# 1. FerretDB indexes every collection's _id as `_ferretdb_sjson->"_id"`
# but looks documents up by `_ferretdb_sjson->'$._id'`. SQLite matches index
# expressions by their text, so every lookup, update and delete by _id scanned
# the whole table (110 ms per update at 20,000 documents, growing without end).
# Writing the lookup as `->'_id'` (the same value: SQLite reads a label as the
# path '$._id') lets SQLite use the unique index: about 2 ms at any size.
# 2. The _id is used in SQL only when it is the filter's only field, so an
# update of {"_id": x, "version": n} (a compare-and-set) read the whole table.
# Every caller of Collection.Query filters the documents it gets again in Go,
# with the whole filter; so narrowing the SQL to the _id whenever the filter
# names a plain _id returns the same documents, from one index lookup.
# 3. patches/serialize-writes.patch: one write at a time per SQLite file,
# queued in Go instead of in SQLite's busy handler (see the patch).
# 4. patches/update-closes-each-query.patch: an update command closes each
# statement's query when that statement is done (an update of 100 statements
# held 100 pooled connections and never answered; see the patch).
# The module is copied out of the module cache (read-only, and `go build
# -overlay` may not replace files there), patched, and built with a go.mod
# that points at the copy.
# Usage: tools/ferretdb/build.sh OUT
set -euo pipefail

OUT="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$HERE"
go mod download github.com/FerretDB/FerretDB
SRC="$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)"
cp -r "$SRC" "$WORK/ferretdb"
chmod -R u+w "$WORK/ferretdb"
META="$WORK/ferretdb/internal/backends/sqlite/metadata/metadata.go"
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$META"
grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$META" || {
  echo "build.sh: the _id lookup fix no longer applies to $SRC" >&2; exit 1; }

COLL="$WORK/ferretdb/internal/backends/sqlite/collection.go"
[ "$(grep -c 'if params.Filter.Len() == 1 {' "$COLL")" = 2 ] || {
  echo "build.sh: the _id pushdown fix no longer applies to $SRC" >&2; exit 1; }
sed -i 's|if params.Filter.Len() == 1 {|if params.Filter.Len() >= 1 {|' "$COLL"

for change in "$HERE"/patches/*.patch; do
  # Outside any repository (mktemp), git apply works as a plain patch tool.
  (cd "$WORK/ferretdb" && git apply -p1 "$change") || {
    echo "build.sh: $(basename "$change") no longer applies to $SRC" >&2; exit 1; }
done

cp go.mod "$WORK/go.mod"
cp go.sum "$WORK/go.sum"
echo "replace github.com/FerretDB/FerretDB => $WORK/ferretdb" >>"$WORK/go.mod"
go build -modfile="$WORK/go.mod" -o "$OUT" .
