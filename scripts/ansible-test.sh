#!/usr/bin/env bash
# ansible-test for the memcg_fix.remediate collection, offline but for the
# package index:
#
#   scripts/ansible-test.sh [VENV] sanity|units [ansible-test arguments...]
#
# VENV is the virtualenv whose ansible-core (and so ansible-test) runs the
# tests (default: $MEMCG_FIX_CACHE/venv-2.16, the newest core that still
# covers Python 2.7 and 3.6 targets). ansible-test must run inside
# ansible_collections/<namespace>/<name>/ of a git work tree: the collection
# in playbooks/collections/ is one. Its requirements install with --venv from
# the package index; its pip bootstrap script, which it would download from
# its own file host, is served from the cache (scripts/ansible-test-get-pip.py).
# The pyenv Pythons of this machine's kind (2.7, 3.6, ...) go on PATH after
# the venv, so ansible-test finds the target Pythons it is asked for; with
# no --python, the tests that run per Python run on each of them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${MEMCG_FIX_CACHE:-/var/cache/memcg-fix-dev}
venv=$cache/venv-2.16
if [[ $# -gt 0 && -x ${1}/bin/ansible-test ]]; then
  venv=$1
  shift
fi
test_lib=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
# every pip version this ansible-test bootstraps (one per target Python line)
for version in $(grep -o "pip='[0-9.]*'" "$test_lib/_internal/python_requirements.py" | tr -d "pip='" | sort -u); do
  cached=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
  if ! cmp -s "$here/scripts/ansible-test-get-pip.py" "$cached"; then
    mkdir -p "$(dirname "$cached")"
    cp "$here/scripts/ansible-test-get-pip.py" "$cached"
  fi
done
# ansible-test makes Python 2.7 environments with virtualenv, run by any
# Python on PATH but the controller's, and reads its version from
# `virtualenv --version`, which only 16.x prints as a bare number (16.7.12 is
# the version ansible-test pins for Python 2): a small venv of Python 3.10
# holds it.
virtualenv_env=$cache/tools/ansible-test-virtualenv
if [[ $("$virtualenv_env/bin/python3.10" -m virtualenv --version 2>/dev/null) != 16.7.12 ]]; then
  rm -rf "$virtualenv_env"
  /root/.pyenv/versions/3.10.*/bin/python3.10 -m venv "$virtualenv_env"
  "$virtualenv_env/bin/pip" install -q virtualenv==16.7.12 2>&1 | grep -v '^WARNING: Location' >&2 || true
fi
pythons=$(find /root/.pyenv/versions -maxdepth 2 -name bin -type d 2>/dev/null | sort | paste -sd: -)
export PATH="$venv/bin:$virtualenv_env/bin${pythons:+:$pythons}:$PATH"
cd "$here/playbooks/collections/ansible_collections/memcg_fix/remediate"
# tests/output is ansible-test's scratch space (a virtualenv among others):
# it must not stay in the collection, which the wheel and the galaxy build ship
log=$(mktemp)
trap 'rm -rf tests/output "$log"; find tests plugins -name __pycache__ -prune -exec rm -rf {} +' EXIT
rc=0
ansible-test "$@" >"$log" 2>&1 || rc=$?
# ansible-test's own lines, without pip's chatter while it installs requirements
grep -v -E '^( *(Looking in|Collecting|Downloading|Processing|Installing collected|Successfully|Requirement already|Attempting uninstall|Found existing|Uninstalling|Using cached)|WARNING: Location| *━)' "$log" || true
# a test it could not run (no virtualenv for a Python, ...) is only a
# warning to ansible-test; here it fails the run
if [[ $rc -eq 0 ]] && grep -q '^WARNING: Skipping' "$log"; then
  echo "ansible-test skipped a test (see WARNING: Skipping above)" >&2
  rc=1
fi
exit "$rc"
