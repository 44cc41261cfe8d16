#!/usr/bin/env bash
# Print the platform's Kubernetes Secret `fmnist-tune` from a .env (default ./.env, as `make .env` writes it), to pipe
# into `kubectl apply -f -`: no secret on a command line or in a tracked file.
# Usage: deploy/kubernetes/make-secret.sh [ENV_FILE] | kubectl apply -n fmnist-tune -f -
set -euo pipefail
env_file=${1:-.env}
keys=(POSTGRES_PASSWORD RAY_AUTH_TOKEN JUPYTER_TOKEN MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY)
[ -r "$env_file" ] || { echo "error: $env_file: no such file (make .env writes one with random secrets)" >&2; exit 2; }
data=""
for key in "${keys[@]}"; do
  value=$(sed -n "s/^$key=//p" "$env_file" | tail -n 1)
  if [ -z "$value" ] || [[ "$value" == change-me* ]]; then
    echo "error: $env_file: $key is missing or still the example's (make .env writes random secrets)" >&2
    exit 2
  fi
  data+="  $key: $(printf '%s' "$value" | base64 -w 0)"$'\n'
  # KubeRay reads the Ray token from the RayCluster's authOptions.secretName under its own key, auth_token
  if [ "$key" = RAY_AUTH_TOKEN ]; then data+="  auth_token: $(printf '%s' "$value" | base64 -w 0)"$'\n'; fi
done
printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: fmnist-tune\ntype: Opaque\ndata:\n%s' "$data"
