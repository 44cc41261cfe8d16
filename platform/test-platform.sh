#!/usr/bin/env bash
# Build the images, start the platform with 2 Ray workers, run the platform tests against it, tear
# it down (volumes included). Prints how long each stage took. Needs a Docker engine, a .env and the
# dataset in data/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
compose=${COMPOSE:-docker-compose}
stage() { local name=$1; shift; local start=$SECONDS; "$@"; echo "== stage '$name': $((SECONDS - start)) s"; }

[ -f .env ] || bash platform/make-env.sh > .env
compgen -G "data/fashion-mnist_train.csv*" >/dev/null || compgen -G "data/train-images-idx3-ubyte*" >/dev/null \
  || { echo "test-platform: put the dataset in data/ first (see data/README.md)" >&2; exit 1; }
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-fmnist-tune-test}  # never the user's own platform
teardown() { $compose --profile serve down -v --remove-orphans >/dev/null 2>&1 || true; }
teardown  # an earlier run's containers (one killed before its EXIT trap) would make 'up' reuse them
trap teardown EXIT
stage build make --no-print-directory build
stage start bash -c "$compose up -d --scale ray-worker=2 && bash platform/wait-healthy.sh 300"
stage tests python3 -m pytest -m docker tests/platform -p no:cacheprovider
