#!/usr/bin/env bash
# Print where each service of the running platform answers (ports from .env, bound to 127.0.0.1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
set -a; . "$root/.env"; set +a
cat <<URLS
Ray dashboard  http://127.0.0.1:${RAY_DASHBOARD_PORT:-8265}   (token: RAY_AUTH_TOKEN in .env)
MLflow         http://127.0.0.1:${MLFLOW_PORT:-5000}   (login: ${MLFLOW_TRACKING_USERNAME:-admin} / MLFLOW_TRACKING_PASSWORD in .env)
TensorBoard    http://127.0.0.1:${TENSORBOARD_PORT:-6006}
Optuna         http://127.0.0.1:${OPTUNA_DASHBOARD_PORT:-8080}   (optuna-dashboard: the live studies, no login)
Jupyter Lab    http://127.0.0.1:${JUPYTER_PORT:-8888}/lab?token=${JUPYTER_TOKEN}
Model server   http://127.0.0.1:${MODEL_SERVER_PORT:-5001}/invocations   (after \`make serve\`)
URLS
