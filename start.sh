#!/usr/bin/env bash
# AssetMon TUI launcher.
#   ./start.sh          install if needed, then Redis (if none answers), a Celery worker and the TUI
#   ./start.sh tui      the TUI alone          ./start.sh worker   a worker alone (foreground)
#   ./start.sh test     install, start what the tests need, run lint, types, import contracts and the whole suite
#   ./start.sh lab      the offline lab target (see README)
set -euo pipefail
export ASSETMON_CWD=${ASSETMON_CWD:-$PWD}  # where the user was: relative export paths land there, not in this folder
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${ASSETMON_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
MODE=${1:-all}
[ $# -gt 0 ] && shift

say() { printf 'start.sh: %s\n' "$*" >&2 2>/dev/null || true; }  # the terminal may be gone (hang-up)

install() {  # (re)install only when pyproject.toml (or the extras wanted) changed
    local extras=$1 stamp
    [ -x "$PY" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
    stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$extras") | sha256sum | cut -c1-16)"
    [ -f "$stamp" ] && return 0
    # the test extras hold everything the plain install does: no reinstall after ./start.sh test
    [ -z "$extras" ] && [ -f "$VENV/.installed-$( (cat pyproject.toml; echo "[dev]") | sha256sum | cut -c1-16)" ] && return 0
    say "installing AssetMon into $VENV (once per pyproject.toml change)…"
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".$extras"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
}

redis_answers() {
    "$PY" - "$1" <<'PY' 2>/dev/null
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PY
}

need_tool() {  # command, Debian package: installed when missing and we may (root with apt)
    command -v "$1" >/dev/null && return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || { say "$1 is not installed; tests that need it will say so"; return 0; }
    say "installing $2 for the tests…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; } || \
        say "could not install $2"
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PRIVATE_REDIS_PID=""
ensure_redis() {  # use REDIS_URL, or start a private redis-server on loopback
    if redis_answers "$ASSETMON_REDIS_URL"; then return 0; fi
    if ! command -v redis-server >/dev/null; then
        say "no Redis answers at $ASSETMON_REDIS_URL and redis-server is not installed: scans will run in the TUI's thread"
        return 0
    fi
    local port dir
    port=$(free_port)
    dir="$ASSETMON_STATE_DIR/redis"
    mkdir -p "$dir"
    say "no Redis at $ASSETMON_REDIS_URL; starting a private one on 127.0.0.1:$port (log: $dir/redis.log)"
    # Loopback only, and a random password other local users cannot read: it
    # is in a 0600 file, never on a command line that `ps` shows.
    local password
    password=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
    printf 'requirepass %s\n' "$password" >"$dir/redis.conf"
    redis-server "$dir/redis.conf" --bind 127.0.0.1 --protected-mode yes --port "$port" --daemonize yes --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no
    for _ in $(seq 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
    PRIVATE_REDIS_PID=$(cat "$dir/redis.pid")
    export ASSETMON_REDIS_URL="redis://:$password@127.0.0.1:$port/0" REDIS_URL="redis://:$password@127.0.0.1:$port/0"
    for _ in $(seq 50); do redis_answers "$ASSETMON_REDIS_URL" && return 0; sleep 0.1; done
    say "the private Redis did not answer; see $dir/redis.log"
}

WORKER_PID=""
BEAT_PID=""
TUI_PID=""
start_worker() {  # each in its own process group, so stopping it leaves no child behind
    local log="$ASSETMON_LOG_DIR/worker.log"
    say "starting a Celery worker (log: $log) and beat for schedules (log: $ASSETMON_LOG_DIR/beat.log)"
    setsid "$VENV/bin/celery" -A worker.celery_app worker --loglevel INFO --concurrency 2 \
        --hostname "assetmon-$$@%h" --logfile "$log" </dev/null >>"$log" 2>&1 &
    WORKER_PID=$!
    # Beat reads schedules from the database: edits in the TUI apply without a restart.
    setsid "$VENV/bin/celery" -A worker.celery_app beat --scheduler worker.beat:DatabaseScheduler \
        --loglevel INFO --logfile "$ASSETMON_LOG_DIR/beat.log" </dev/null >>"$ASSETMON_LOG_DIR/beat.log" 2>&1 &
    BEAT_PID=$!
}

stop_group() {  # TERM (Celery's warm shutdown), then KILL the group after a timeout
    local pid=$1 name=$2
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    say "stopping the $name (warm shutdown, 10 s before a kill)…"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

stop_all() {
    trap - EXIT INT TERM HUP
    stop_group "$BEAT_PID" beat
    stop_group "$WORKER_PID" worker
    if [ -n "$PRIVATE_REDIS_PID" ] && kill -0 "$PRIVATE_REDIS_PID" 2>/dev/null; then
        say "stopping the private Redis"
        kill -TERM "$PRIVATE_REDIS_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PRIVATE_REDIS_PID" 2>/dev/null || break; sleep 0.1; done
    fi
}

hang_up() {  # the terminal is gone (an SSH session dropped): stop all we started; say it in the log folder
    exec 2>>"$ASSETMON_LOG_DIR/start.log"
    say "hang-up: stopping the TUI, the worker, beat and the private Redis"
    if [ -n "$TUI_PID" ] && kill -HUP "$TUI_PID" 2>/dev/null; then  # it ends as q would (its local scans cancelled)
        for _ in $(seq 50); do kill -0 "$TUI_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TUI_PID" 2>/dev/null || true
    fi
    stop_all
    exit 129
}

suite() {  # marker expression, pytest args: the parallel part, then the "alone" tests one at a time
    # Most tests wait on sockets and subprocesses far more than on the CPU: four at
    # a time on two cores (12 % quicker than three, 2026-12-06; ASSETMON_TEST_WORKERS=0:
    # one by one). End-to-end lab scans
    # that judge timing-sensitive outcomes (no false alarm, a kill mid-step, cancel
    # within 2 s) run afterwards by themselves. Exit status 5 is "no test selected".
    local only=$1 rc=0
    shift
    "$PY" -m pytest -n "${ASSETMON_TEST_WORKERS:-4}" -m "not alone${only:+ and $only}" "$@" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"
    rc=0
    "$PY" -m pytest -m "alone${only:+ and $only}" "$@" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"
}

gates() {  # lint, format, types and layer contracts: each fails the run when broken
    local bin="$VENV/bin" failed=0
    say "gates: ruff check, ruff format --check, mypy, lint-imports"
    "$bin/ruff" check --quiet . || failed=1
    "$bin/ruff" format --check --quiet . || { say "run: $bin/ruff format ."; failed=1; }
    "$bin/mypy" || failed=1
    "$bin/lint-imports" --no-cache >/dev/null || { "$bin/lint-imports" --no-cache; failed=1; }
    [ "$failed" = 0 ] || { say "a gate failed (see above)"; exit 1; }
}

case "$MODE" in
    test) install "[dev]" ;;
    *) install "" ;;
esac
umask 077  # what we write from here on (database, logs, the private Redis's files) is the user's alone
eval "$("$PY" -m assetmon_tui.core.config)"
export ASSETMON_REDIS_URL
"$PY" -m assetmon_tui.cli init-db >/dev/null

case "$MODE" in
    all)
        trap stop_all EXIT INT TERM
        trap hang_up HUP
        ensure_redis
        start_worker
        # The TUI waits (20 s at most) for this worker to answer before it picks a
        # backend: its header says "starting worker…" meanwhile, and no scan runs
        # in the TUI by mistake. It runs in the background of this script (same
        # process group, so it still owns the terminal) because a foreground child
        # would hold a hang-up back from our trap until it exits by itself.
        exec 3<&0
        ASSETMON_WORKER_STARTING=$(($(date +%s) + 20)) "$VENV/bin/assetmon" tui "$@" <&3 3<&- &
        TUI_PID=$!
        wait "$TUI_PID" || true
        ;;
    tui)
        exec "$VENV/bin/assetmon" tui "$@"
        ;;
    worker)
        trap stop_all EXIT INT TERM HUP
        ensure_redis
        start_worker
        say "worker running; Ctrl+C stops it"
        wait "$WORKER_PID" || true
        ;;
    lab)
        exec "$VENV/bin/assetmon" lab "$@"
        ;;
    test)
        trap stop_all EXIT INT TERM
        # The tests start private redis-servers, open the HTML report in Chromium, and use tmux.
        need_tool redis-server redis-server
        need_tool chromium chromium
        need_tool tmux tmux  # tests/test_tmux.py runs ./start.sh in a real terminal
        ensure_redis
        gates
        suite "" "$@"
        # The same suite again on PostgreSQL, the store for several machines.
        pg=${ASSETMON_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
        if [ -z "${DATABASE_URL:-}" ]; then
            if "$PY" -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$pg" 2>/dev/null; then
                say "running the suite again with DATABASE_URL=$pg"
                DATABASE_URL="$pg" suite "not one_store" "$@"
            elif [ "${ASSETMON_REQUIRE_POSTGRES:-}" = 1 ]; then
                say "PostgreSQL is required (ASSETMON_REQUIRE_POSTGRES=1) but does not answer at $pg"
                exit 1
            else
                say "PostgreSQL does not answer at $pg: skipped the PostgreSQL pass"
            fi
        fi
        ;;
    *)
        say "unknown mode '$MODE' (use: tui, worker, test, lab, or nothing for worker + TUI)"
        exit 2
        ;;
esac
