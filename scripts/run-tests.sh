#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (run as root).
#
# Sets up what is missing (scripts/setup-dev.sh), builds the test targets on
# first use (cached under $MEMCG_FIX_CACHE), then runs, in order:
#   1. static checks: ruff, mypy, vermin (host-side code on Python 2.7/3.6),
#      ansible-lint --profile production;
#   2. pytest: unit, policy cases, live-kernel, container and VM tiers on the
#      current ansible-core;
#   3. the tests that depend on the controller's ansible-core again on 2.16;
#   4. molecule scenarios.
# Pass pytest arguments to narrow step 2, e.g. `-m "not vm"`; MEMCG_FIX_SKIP
# may list steps to skip (lint, targets, pytest, core216, molecule) for local
# loops.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export MEMCG_FIX_CACHE=${MEMCG_FIX_CACHE:-/var/cache/memcg-fix-dev}
bash scripts/setup-dev.sh

venv="$MEMCG_FIX_CACHE/venv-current"
venv216="$MEMCG_FIX_CACHE/venv-2.16"
export PATH="$venv/bin:$PATH"   # molecule looks for ansible-config on PATH
export ANSIBLE_COLLECTIONS_PATH="$MEMCG_FIX_CACHE/collections"
export PYTHONDONTWRITEBYTECODE=1
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
skip=" ${MEMCG_FIX_SKIP:-} "
step() { printf '\n=== %s ===\n' "$*"; }
started=$(date +%s)

if [[ $skip != *" lint "* ]]; then
  step "ruff"
  ruff check .
  step "mypy"
  mypy
  step "vermin: host-side code runs on Python 2.7 and 3.6+"
  vermin --no-tips --violations -t=2.7- -t=3.6- --eval-annotations \
    playbooks/collections/ansible_collections/memcg_fix/remediate/plugins
  step "ansible-lint --profile production"
  # the playbooks and the memcg_fix.remediate collection they use
  ANSIBLE_COLLECTIONS_PATH="$here/playbooks/collections:$ANSIBLE_COLLECTIONS_PATH" \
    ansible-lint --profile production --offline playbooks/
fi

if [[ $skip != *" targets "* ]]; then
  # Build (first run) or find (cached) every test target, so pytest and
  # molecule start from ready images; rebuilds whatever a recipe change
  # invalidated. Then point podman and molecule at them.
  step "test targets (tests/targets/build.py; cached in $MEMCG_FIX_CACHE/targets)"
  python -m tests.targets.build debian el7 el8 el9 vm
  eval "$(python -m tests.targets.build --env debian el7 el8 el9)"
fi

if [[ $skip != *" pytest "* ]]; then
  step "pytest (ansible-core $(python -c 'import ansible.release as r; print(r.__version__)'))"
  python -m pytest --durations=25 "$@"
fi

if [[ $skip != *" core216 "* ]]; then
  # What depends on the controller's ansible-core: the role and its modules,
  # the fleet commands over ansible-runner, facts collection, host data that
  # must never be templated, and the AWX job (its execution environment pins
  # 2.16). Target plumbing, faults and locks do not change with the core and
  # run once, above.
  step "pytest container tier on ansible-core 2.16"
  "$venv216/bin/python" -m pytest -m "containers and not vm" --durations=10 \
    tests/integration/test_role.py tests/integration/test_fleet.py \
    tests/integration/test_memcg_facts_module.py tests/integration/test_injection_targets.py \
    tests/integration/test_awx_layout.py
fi

if [[ $skip != *" molecule "* ]]; then
  step "molecule"
  # the scenarios use the images built above (MEMCG_FIX_IMAGE_*, CONTAINERS_CONF)
  eval "$(python -m tests.targets.build --env debian el7 el8 el9)"
  molecule test --all
  # podman leaves the scenarios' (empty) --cgroup-parent behind
  python -c 'from tests.targets.target import remove_cgroup_parent; remove_cgroup_parent()'
fi

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - started ))"
