#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one command: the side-by-side table with the memory figures
# (cargo bench --bench compare, about 20 minutes) and the surge chart (cargo bench --bench surge,
# about 8 minutes, drawn into docs/surge.svg). PGBOUNCER names the PgBouncer binary to compare
# with (default: pgbouncer on PATH or in /usr/sbin); the reports land in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/postgres-env.sh
. scripts/postgres-env.sh
ensure_postgres
cargo bench --bench compare
SURGE_CHART="${SURGE_CHART:-docs/surge.svg}" cargo bench --bench surge
echo "reports: target/bench/compare-latest.md, target/bench/surge-latest.json; chart: ${SURGE_CHART:-docs/surge.svg}"
