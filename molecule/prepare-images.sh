#!/usr/bin/env bash
# Build (or find cached) the test target images molecule's scenarios use, and
# print the environment that points the scenarios at them:
#   eval "$(bash molecule/prepare-images.sh)" && molecule test --all
set -euo pipefail
cd "$(dirname "$0")/.."
python=${MEMCG_FIX_PYTHON:-${MEMCG_FIX_CACHE:-/var/cache/memcg-fix-dev}/venv-current/bin/python}
"$python" -m tests.targets.build --env debian el7 el8 el9
