#!/usr/bin/env bash
# Install memcg-fix from this checkout for the local machine:
#   a virtualenv in $MEMCG_FIX_PREFIX (default /opt/memcg-fix) and a
#   /usr/local/bin/memcg-fix link. Installs python3-venv with apt if missing.
# Re-running upgrades in place. Nothing else on the host is changed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${MEMCG_FIX_PREFIX:-/opt/memcg-fix}
python=${MEMCG_FIX_PYTHON:-python3}
bindir=${MEMCG_FIX_BINDIR:-/usr/local/bin}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "install.sh: memcg-fix needs Python >= 3.10 as '$python' (set MEMCG_FIX_PYTHON)" >&2
  exit 3
fi
if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
  echo "install.sh: installing python3-venv" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv </dev/null >/dev/null
fi
[ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"
"$prefix/bin/pip" install -q --upgrade "$here" 2>&1 | grep -v '^WARNING: Location' >&2 || true
"$prefix/bin/memcg-fix" --version >/dev/null
mkdir -p "$bindir"
ln -sfn "$prefix/bin/memcg-fix" "$bindir/memcg-fix"
echo "installed: $("$bindir/memcg-fix" --version) -> $bindir/memcg-fix" >&2
