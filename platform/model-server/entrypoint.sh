#!/usr/bin/env bash
# Serve MODEL_URI (default: the champion). --env-manager local: the image already holds the packages.
set -euo pipefail
exec mlflow models serve -m "${MODEL_URI:-models:/fmnist-cnn@champion}" --env-manager local \
  --host 0.0.0.0 --port 5001 --workers 1
