#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer, starting throwaway ones if nothing
# listens at the configured URLs. Source it; it exports:
#   STRATA_PG_SERVER   postgres://user@host:port (no database)
#   STRATA_REDIS_URL   redis://host:port
# Inputs (optional): STRATA_PG_SERVER, STRATA_REDIS_URL.
# Throwaway servers live under .run/ in the checkout and are left running
# for the next command; `scripts/services.sh stop` stops them.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"

say() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    port_open 127.0.0.1 "$p" || { echo "$p"; return; }
  done
  say "no free port from $1"; return 1
}

apt_install() {
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "please install: $*"; return 1
  fi
}

pg_bin() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v initdb)"; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ]; then apt_install postgresql >/dev/null; d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
  echo "$d"
}

start_postgres() {
  local bin port data user
  bin=$(pg_bin)
  data="$RUN/pg"
  if [ -f "$data/port" ] && port_open 127.0.0.1 "$(cat "$data/port")"; then
    echo "$(cat "$data/port")"; return
  fi
  port=$(free_port 55432)
  mkdir -p "$RUN"
  user=$(id -un)
  # initdb refuses to run as root: use the postgres account for the cluster.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$data" postgres
    as=(runuser -u postgres --)
    user=postgres
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data" && [ "$(id -u)" = 0 ] && chown postgres "$data" "$RUN"
    say "initdb $data"
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  echo "$port" > "$data/port"
  say "started PostgreSQL on 127.0.0.1:$port (data in $data)"
  echo "$port"
}

start_redis() {
  local port
  command -v redis-server >/dev/null || apt_install redis-server
  if [ -f "$RUN/redis/port" ] && port_open 127.0.0.1 "$(cat "$RUN/redis/port")"; then
    cat "$RUN/redis/port"; return
  fi
  port=$(free_port 56379)
  mkdir -p "$RUN/redis"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --dir "$RUN/redis" --logfile "$RUN/redis/redis.log" --pidfile "$RUN/redis/redis.pid" >/dev/null
  echo "$port" > "$RUN/redis/port"
  say "started Redis on 127.0.0.1:$port"
  echo "$port"
}

stop_services() {
  if [ -f "$RUN/pg/PG_VERSION" ]; then
    local as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$(pg_bin)/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  [ -f "$RUN/redis/redis.pid" ] && kill "$(cat "$RUN/redis/redis.pid")" 2>/dev/null || true
  say "stopped throwaway services"
}

if [ "${1:-}" = stop ]; then stop_services; exit 0; fi

# host:port of a URL such as scheme://user@host:port/db
hostport() { echo "$1" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#'; }

PG="${STRATA_PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
hp=$(hostport "$PG")
if ! port_open "${hp%:*}" "${hp##*:}"; then
  say "nothing answers at $hp"
  PG="postgres://postgres@127.0.0.1:$(start_postgres)"
fi
export STRATA_PG_SERVER="$PG"

REDIS="${STRATA_REDIS_URL:-redis://127.0.0.1:6379}"
hp=$(hostport "$REDIS")
if ! port_open "${hp%:*}" "${hp##*:}"; then
  say "nothing answers at $hp"
  REDIS="redis://127.0.0.1:$(start_redis)"
fi
export STRATA_REDIS_URL="$REDIS"
