#!/usr/bin/env bash
set -euo pipefail
exec tensorboard --logdir "${TENSORBOARD_LOGDIR:-/results}" --host 0.0.0.0 --port 6006 --reload_interval 10
