#!/bin/sh
# First start: a cluster in $PGDATA whose superuser POSTGRES_USER has POSTGRES_PASSWORD
# (scram-sha-256 from anywhere; the engine creates its own database). Then the server, listening
# on POSTGRES_LISTEN (default 127.0.0.1) port POSTGRES_PORT (default 5432), as postgres.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
case $POSTGRES_PASSWORD in change-me|changeme|postgres|password)
  echo "ivr-postgres: POSTGRES_PASSWORD (IVR_POSTGRES_PASSWORD) is an example value" >&2; exit 64;;
esac
USER_NAME=${POSTGRES_USER:-ivr}
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  su postgres -s /bin/sh -c "$BIN/initdb -D '$PGDATA' -U '$USER_NAME' --pwfile='$pwfile' \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8" >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D '$PGDATA' \
  -c listen_addresses='${POSTGRES_LISTEN:-127.0.0.1}' -c port='${POSTGRES_PORT:-5432}' \
  -c unix_socket_directories=/run/postgresql"
