#!/usr/bin/env bash
# The tracking server. Host checks stay on: only the compose name and loopback are allowed.
set -euo pipefail
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${POSTGRES_DB:?}"
mkdir -p /mlflow/artifacts
exec mlflow server \
  --backend-store-uri "postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST:-postgres}:5432/${POSTGRES_DB}" \
  --serve-artifacts --artifacts-destination /mlflow/artifacts \
  --host 0.0.0.0 --port 5000 --workers "${MLFLOW_WORKERS:-2}" \
  --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:5000,localhost,localhost:5000,127.0.0.1,127.0.0.1:5000}"
