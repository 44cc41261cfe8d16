#!/usr/bin/env bash
# Install Docker and docker-compose from Debian's packages if missing; start dockerd if not running.
set -euo pipefail
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd > /tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null 2>&1 || { echo "start-docker: dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
echo "docker $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short)"
