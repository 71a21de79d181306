#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (PostgreSQL server and
# client binaries, the `postgres` system user, HAProxy, psycopg and asyncpg in target/py-drivers), then
# runs every test group. Arguments go to
# `cargo test` (e.g. `./scripts/test.sh --test session_state`). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/postgres-env.sh
. scripts/postgres-env.sh

ensure_postgres
ensure_haproxy
ensure_py_drivers
if [[ $# -eq 0 ]]; then
    set -- --all-targets --no-fail-fast
fi
echo "== cargo test $*"
exec cargo test "$@"
