#!/usr/bin/env bash
# First start: create the cluster (password auth over the network) and the MLflow role.
# Every start: make sure MLflow's and Optuna's databases exist (an older volume may lack Optuna's),
# then run PostgreSQL in the foreground. The image's STOPSIGNAL (SIGINT) asks for a fast shutdown.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" "${POSTGRES_DB:?set POSTGRES_DB}"
OPTUNA_DB=${OPTUNA_DB:-optuna}
# PostgreSQL refuses a data folder that others may read; a volume's owner may have added group bits (Kubernetes' fsGroup)
if [ -d "$PGDATA" ]; then chmod 0700 "$PGDATA"; fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
  "$bin/initdb" -D "$PGDATA" --username=postgres --pwfile="$password_file" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$password_file"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 --username=postgres -d postgres -v user="$POSTGRES_USER" -v password="$POSTGRES_PASSWORD" \
    <<<'CREATE ROLE :"user" LOGIN PASSWORD :'"'"'password'"'"';' >/dev/null
else
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
fi
for db in "$POSTGRES_DB" "$OPTUNA_DB"; do
  psql -v ON_ERROR_STOP=1 --username=postgres -d postgres -v user="$POSTGRES_USER" -v db="$db" >/dev/null <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
done
"$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
