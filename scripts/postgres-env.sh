# Sourced by scripts/try-pgsluice.sh, scripts/test.sh and .ci/run: finds the PostgreSQL server
# binaries and, on a machine that lacks them, installs them with apt-get (saying so first),
# so that the README's two commands work on a fresh Debian machine that has only Rust.
# `ensure_postgres` leaves the binaries' directory in $PG_BINDIR and, when run as root, makes
# sure the `postgres` system user exists (PostgreSQL refuses to run as root, so the scripts
# and the test harness start it as that user).

# Same order as the test harness (tests/common/pgbin.rs): $PG_BINDIR, pg_config --bindir,
# initdb on PATH, the newest /usr/lib/postgresql/*/bin.
find_pg_bindir() {
    local dir
    if [[ -n "${PG_BINDIR:-}" && -x "${PG_BINDIR}/initdb" ]]; then
        echo "$PG_BINDIR"; return 0
    fi
    if dir="$(pg_config --bindir 2>/dev/null)" && [[ -x "$dir/initdb" ]]; then
        echo "$dir"; return 0
    fi
    if dir="$(command -v initdb 2>/dev/null)"; then
        dirname "$(readlink -f "$dir")"; return 0
    fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"; return 0
    fi
    return 1
}

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root to run: $* (or install PostgreSQL and set PG_BINDIR)" >&2
        return 1
    fi
}

apt_updated=no
apt_install() {
    echo "installing with apt-get: $*"
    if [[ "$apt_updated" == no ]]; then
        as_root apt-get update -qq
        apt_updated=yes
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# A client tool from the server's bindir or from PATH.
have_pg_tool() {
    [[ -x "$1/$2" ]] || command -v "$2" >/dev/null 2>&1
}

ensure_postgres() {
    local bindir tool
    if ! bindir="$(find_pg_bindir)"; then
        echo "PostgreSQL server binaries not found."
        if ! command -v apt-get >/dev/null 2>&1; then
            echo "no apt-get here: install PostgreSQL (initdb, pg_ctl, psql, pgbench) and set PG_BINDIR" >&2
            return 1
        fi
        apt_install postgresql postgresql-contrib postgresql-client
        bindir="$(find_pg_bindir)" || { echo "initdb still not found after install" >&2; return 1; }
    fi
    for tool in psql pgbench pg_isready; do
        if ! have_pg_tool "$bindir" "$tool"; then
            apt_install postgresql-client postgresql-contrib
            break
        fi
    done
    for tool in initdb pg_ctl postgres psql pgbench pg_isready; do
        have_pg_tool "$bindir" "$tool" || { echo "missing $tool (bindir $bindir)" >&2; return 1; }
    done
    if [[ "$(id -u)" -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        echo "creating the postgres system user (PostgreSQL refuses to run as root)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /bin/sh postgres
    fi
    export PG_BINDIR="$bindir"
    echo "using PostgreSQL binaries in $bindir ($("$bindir/postgres" --version))"
}

# HAProxy for the fleet tests (tests/fleet/behind_haproxy.rs); they skip, saying so, without it.
# psycopg and asyncpg in a virtualenv of their own (target/py-drivers), for the tests that
# run the point-of-sale example (examples/point_of_sale/) and LISTEN as real drivers do.
ensure_py_drivers() {
    local venv=target/py-drivers
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import psycopg, asyncpg' 2>/dev/null; then
        return 0
    fi
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'psycopg[binary]>=3.1,<4' 'asyncpg>=0.29,<1'
}

ensure_haproxy() {
    if [[ -x /usr/sbin/haproxy ]] || command -v haproxy >/dev/null 2>&1; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1; then
        apt_install haproxy || echo "warning: HAProxy not installed; the tests behind it will skip" >&2
    fi
}
