#!/bin/sh
# Entrypoint of the local postgres stand-in (scripts/containers/local/postgres.Dockerfile):
# the parts of the official image's contract that the shop's compose files use.
#   - started as root: PGDATA is handed to postgres and the script runs again as postgres;
#   - PGDATA empty: initdb (superuser "postgres"; local socket trust, TCP refused
#     unless POSTGRES_HOST_AUTH_METHOD says otherwise), then every
#     /docker-entrypoint-initdb.d/*.sh (run) and *.sql (psql) against a
#     temporary server that listens on no TCP port;
#   - then the command (postgres and its -c options) replaces this script.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  export PGDATA
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --username=postgres --auth-local=trust --auth-host="${POSTGRES_HOST_AUTH_METHOD:-reject}" \
    --encoding=UTF8 -D "$PGDATA"
  # The temporary server gets the command's options too (TLS, hba_file): the
  # init scripts then run under the rules the real server will have.
  shift
  pg_ctl -D "$PGDATA" -w -o "$* -c listen_addresses=''" start
  for f in "${INITDB_DIR:-/docker-entrypoint-initdb.d}"/*; do
    case "$f" in
      *.sh) echo "docker-entrypoint.sh: running $f"; sh "$f" ;;
      *.sql) echo "docker-entrypoint.sh: running $f"; psql -v ON_ERROR_STOP=1 --username postgres -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  set -- postgres "$@"
fi
exec "$@"
