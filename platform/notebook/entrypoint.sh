#!/usr/bin/env bash
# Jupyter Lab; a token is required (JUPYTER_TOKEN from .env).
set -euo pipefail
: "${JUPYTER_TOKEN:?set JUPYTER_TOKEN (see .env.example)}"
export RAY_AUTH_MODE=token
exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --notebook-dir=/home/fmnist/notebooks \
  --IdentityProvider.token="$JUPYTER_TOKEN" --ServerApp.allow_remote_access=True
