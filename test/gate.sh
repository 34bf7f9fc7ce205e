#!/usr/bin/env bash
# `npm test` after the build: eslint runs beside the tests (it needs no server,
# and the tests leave a core idle while they wait on servers and processes);
# its report follows tap's. Exit: the tests' code, else lint's.
set -u
cd "$(dirname "$0")/.."
lintlog=$(mktemp)
npx eslint . >"$lintlog" 2>&1 &
lint=$!
npx tap "dist/test/**/*.test.js"
tests=$?
wait "$lint"
lintrc=$?
cat "$lintlog"
rm -f "$lintlog"
if [ "$lintrc" -ne 0 ]; then echo "eslint failed (exit $lintrc)"; else echo "eslint: no problems"; fi
[ "$tests" -ne 0 ] && exit "$tests"
exit "$lintrc"
