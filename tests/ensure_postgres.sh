#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 and lets the `postgres` role in without a
# password (the tests create and drop their own databases). When none answers, it says what it changes, then installs
# Debian's PostgreSQL, adds loopback trust lines to its pg_hba.conf and starts it: meant for a test machine.
set -euo pipefail

answers() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; }

answers && exit 0
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "ensure_postgres: installing PostgreSQL from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  echo "ensure_postgres: letting every local role in without a password over loopback (trust for 127.0.0.1 and ::1 at the top of $hba)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi
echo "ensure_postgres: starting PostgreSQL $version (cluster main) on 127.0.0.1:5432"
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 30); do answers && exit 0; sleep 1; done
echo "ensure_postgres: PostgreSQL does not answer on 127.0.0.1:5432 as user postgres" >&2
exit 1
