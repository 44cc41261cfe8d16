#!/usr/bin/env bash
# Start a Ray head (RAY_ROLE=head) or a worker joining ray-head:6379, in the foreground.
# Token authentication is on: every node, the driver and Jupyter share RAY_AUTH_TOKEN.
set -euo pipefail
: "${RAY_AUTH_TOKEN:?set RAY_AUTH_TOKEN (see .env.example)}"
export RAY_AUTH_MODE=token
common=(--num-cpus "${RAY_NUM_CPUS:-1}" --object-store-memory "${RAY_OBJECT_STORE_BYTES:-1000000000}" --disable-usage-stats --block)
if [ "${RAY_ROLE:-worker}" = head ]; then
  exec ray start --head --port=6379 --dashboard-host=0.0.0.0 --dashboard-port=8265 "${common[@]}"
fi
exec ray start --address="${RAY_HEAD_ADDRESS:-ray-head:6379}" "${common[@]}"
