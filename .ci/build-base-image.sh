#!/usr/bin/env bash
# No image registry here: build a Debian bookworm base with debootstrap and `docker import` it.
# It carries python3 (3.11), venv and PostgreSQL, so one base serves every service.
set -euo pipefail
image=${1:-fmnist/base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then echo "base image $image exists"; exit 0; fi
rootfs=$(mktemp -d /tmp/fmnist-rootfs.XXXXXX)
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,postgresql \
  bookworm "$rootfs" http://deb.debian.org/debian >/tmp/debootstrap.log 2>&1 \
  || { tail -20 /tmp/debootstrap.log >&2; exit 1; }
rm -f "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs"/var/lib/postgresql/15/main
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
rm -rf "$rootfs"
echo "base image $image built"
