#!/usr/bin/env bash
# Runs pgsluice for real in front of a throwaway PostgreSQL: initdb + start a cluster in a temp
# dir (as the `postgres` user when run as root), create a role `app` (SCRAM password) and a
# database `app`, write a pooler.toml + userlist.txt, and run pgsluice in the foreground on
# 127.0.0.1:6432. Ctrl-C stops pgsluice; the cluster is stopped and removed on exit. Installs
# PostgreSQL with apt-get first when its binaries are missing (scripts/postgres-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/postgres-env.sh
. scripts/postgres-env.sh
ensure_postgres
bindir="$PG_BINDIR"
pg_port="${PG_PORT:-5499}"
port="${PGSLUICE_PORT:-6432}"
pool_size="${POOL_SIZE:-20}"
pool_mode="${POOL_MODE:-transaction}"
work="$(mktemp -d /tmp/pgsluice-try-XXXXXX)"
chmod 755 "$work"
as_pg=()
if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres: "$work"
    as_pg=(runuser -u postgres --)
fi

cleanup() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting PostgreSQL on 127.0.0.1:$pg_port (data in $work/data)"
"${as_pg[@]}" "$bindir/initdb" -D "$work/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w \
    -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
"${as_pg[@]}" "$bindir/psql" -X -q -h "$work" -p "$pg_port" -U postgres \
    -c "create role app login password 'app-secret'" -c "create database app owner app"

cat >"$work/pooler.toml" <<TOML
[pooler]
listen_addr = "127.0.0.1"
listen_port = $port
unix_socket_dir = ""
pool_mode = "$pool_mode"
max_client_conn = 10000
auth_type = "scram-sha-256"
auth_file = "userlist.txt"
default_pool_size = $pool_size
admin_users = ["app"]
metrics_addr = "127.0.0.1:9127"

[databases.app]
host = "127.0.0.1"
port = $pg_port
TOML
echo '"app" "app-secret"' >"$work/userlist.txt"

echo "== pgsluice on 127.0.0.1:$port — in another terminal:"
echo "   PGPASSWORD=app-secret psql -h 127.0.0.1 -p $port -U app app"
echo "   PGPASSWORD=app-secret pgbench -h 127.0.0.1 -p $port -U app -i app"
echo "   PGPASSWORD=app-secret psql -h 127.0.0.1 -p $port -U app pgsluice -c 'SHOW POOLS'   # admin console"
echo "== Ctrl-C to stop"
cargo run --release --quiet -- -c "$work/pooler.toml" ${PGSLUICE_ARGS:-} || true
