#!/usr/bin/env bash
# Download, on the host, every wheel the runtime image needs, so `docker build` installs with
# --no-index (for builders whose containers cannot reach PyPI).
# Usage: build-wheelhouse.sh DIR [PYTHON_VERSION of the base image, e.g. 3.11.2] [EXTRAS, default platform;
#        platform,gpu for the GPU image]
set -euo pipefail
target=${1:-wheelhouse}
python_version=${2:-$(python3 -c 'import platform; print(platform.python_version())')}
extras=${3:-platform}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$target"
requirements=$(mktemp)
python3 - "$root/pyproject.toml" "$extras" > "$requirements" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = [requirement for extra in sys.argv[2].split(",") for requirement in project["optional-dependencies"][extra]]
print("\n".join(project["dependencies"] + extras))
PY
# Wheels only, resolved for the image's Python version (Requires-Python differs between 3.11 patches).
python3 -m pip download -q -d "$target" --only-binary=:all: --python-version "$python_version" \
  -r "$requirements" "setuptools>=68" wheel
rm -f "$requirements"
echo "wheelhouse: $(ls "$target" | wc -l) files, $(du -sh "$target" | cut -f1)"
