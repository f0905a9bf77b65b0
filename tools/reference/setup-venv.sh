#!/usr/bin/env bash
# Creates the Python environment that makes the fixtures under tests/fixtures/.
# The venv lives in tools/reference/.venv (ignored by git). Building and testing reel never need it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q --upgrade pip
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
echo "reference venv ready: $here/.venv/bin/python"
