#!/usr/bin/env bash
# Print a .env from .env.example with fresh random secrets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
sed -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(secret)|" \
    -e "s|^RAY_AUTH_TOKEN=.*|RAY_AUTH_TOKEN=$(secret)$(secret)|" \
    -e "s|^JUPYTER_TOKEN=.*|JUPYTER_TOKEN=$(secret)|" \
    -e "s|^MLFLOW_TRACKING_PASSWORD=.*|MLFLOW_TRACKING_PASSWORD=$(secret)|" \
    -e "s|^MLFLOW_FLASK_SERVER_SECRET_KEY=.*|MLFLOW_FLASK_SERVER_SECRET_KEY=$(secret)|" "$root/.env.example"
