#!/usr/bin/env bash
# Wait until every container of the compose project reports healthy (at most $1 seconds, default 300).
set -euo pipefail
limit=${1:-300}
compose=${COMPOSE:-docker-compose}
for ((waited = 0; waited < limit; waited += 3)); do
  states=$($compose ps -q | xargs docker inspect --format '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}')
  if ! grep -qv ' healthy$' <<<"$states"; then echo "all healthy after ${waited}s"; exit 0; fi
  sleep 3
done
echo "not healthy after ${limit}s:" >&2; grep -v ' healthy$' <<<"$states" >&2
exit 1
