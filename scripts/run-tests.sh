#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (run as root).
#
# Sets up what is missing (scripts/setup-dev.sh), builds the test targets on
# first use (cached under $MEMCG_FIX_CACHE), then runs, in order:
#   1. static checks: ruff, mypy, vermin (host-side code on Python 2.7/3.6),
#      ansible-lint --profile production; ansible-test sanity and units of the
#      memcg_fix.remediate collection (ansible-core 2.16: targets 2.7-3.12);
#   2. pytest: unit, policy cases, live-kernel, container and VM tiers on the
#      current ansible-core;
#   3. the tests that depend on the controller's ansible-core again on 2.16;
#   4. molecule scenarios.
# MEMCG_FIX_MOLECULE_SUFFIX, when set, is appended to the molecule instance
# names, so two checkouts can run the same scenario at once.
# Without arguments, step 2 runs the VM tier and the rest side by side; pass
# pytest arguments to narrow it (one session), e.g. `-m "not vm"`; MEMCG_FIX_SKIP
# may list steps to skip (lint, ansible-test, targets, pytest, core216, molecule) for local
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
  # (modules and module_utils; plugins/action/ is controller code, Python 3.10+)
  collection_plugins=playbooks/collections/ansible_collections/memcg_fix/remediate/plugins
  vermin --no-tips --violations -t=2.7- -t=3.6- --eval-annotations \
    "$collection_plugins/modules" "$collection_plugins/module_utils" \
    playbooks/collections/ansible_collections/memcg_fix/remediate/tests/unit \
    scripts/ansible-test-get-pip.py
  step "ansible-lint --profile production"
  # the playbooks and the memcg_fix.remediate collection they use
  ANSIBLE_COLLECTIONS_PATH="$here/playbooks/collections:$ANSIBLE_COLLECTIONS_PATH" \
    ansible-lint --profile production --offline playbooks/
fi

if [[ $skip != *" ansible-test "* ]]; then
  # The collection as the ecosystem holds collections to: sanity on every
  # Python the 2.16 line supports as a target (2.7, 3.6-3.12; the current
  # core drops 2.7-3.7, which the modules must still run on), and the
  # modules' unit tests on the oldest target Python (2.7).
  step "ansible-test sanity (ansible-core 2.16, Python 2.7-3.12)"
  bash scripts/ansible-test.sh "$venv216" sanity --venv --color no
  step "ansible-test units (ansible-core 2.16, Python 2.7)"
  bash scripts/ansible-test.sh "$venv216" units --venv --color no --python 2.7
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
  if [[ $# -gt 0 ]]; then
    python -m pytest --durations=25 "$@"
  else
    # Two lanes at once: the VM tier (a TCG guest: one core, mostly waiting
    # for reboots) beside everything else (containers, live kernel, units).
    # Each lane is its own session with its own targets; a lane removes only
    # what it started.
    vm_log=$(mktemp)
    python -m pytest -m vm --durations=10 >"$vm_log" 2>&1 & vm_pid=$!
    rc_rest=0 rc_vm=0
    python -m pytest -m "not vm" --durations=25 || rc_rest=$?
    wait "$vm_pid" || rc_vm=$?
    printf '\n--- the VM lane (pytest -m vm) ---\n'
    cat "$vm_log"
    rm -f "$vm_log"
    if [[ $rc_rest -ne 0 || $rc_vm -ne 0 ]]; then
      echo "pytest failed (not vm: rc=$rc_rest, vm: rc=$rc_vm)" >&2
      exit 1
    fi
  fi
fi

if [[ $skip != *" core216 "* ]]; then
  # What depends on the controller's ansible-core: the role and its modules,
  # the fleet commands over ansible-runner, facts collection (both paths: on
  # 2.16, memcg_facts_raw uses 2.16's own interpreter discovery), host data that
  # must never be templated, and the AWX job (its execution environment pins
  # 2.16). Target plumbing, faults and locks do not change with the core and
  # run once, above.
  step "pytest container tier on ansible-core 2.16"
  "$venv216/bin/python" -m pytest -m "containers and not vm" --durations=10 \
    tests/integration/test_role.py tests/integration/test_fleet.py \
    tests/integration/test_memcg_facts_module.py tests/integration/test_injection_targets.py \
    tests/integration/test_awx_layout.py \
    "tests/integration/test_fast_detection.py::test_both_paths_give_byte_identical_documents_on_every_container_kind"
fi

if [[ $skip != *" molecule "* ]]; then
  step "molecule"
  # the scenarios use the images built above (MEMCG_FIX_IMAGE_*, CONTAINERS_CONF)
  eval "$(python -m tests.targets.build --env debian el7 el8 el9)"
  # Two lanes of scenarios at once, one per core, each scenario whole
  # (destroy, create, converge, idempotence, verify, destroy) on instances
  # of its own. molecule's own --workers cannot do this: it runs scenarios
  # in parallel only in collection mode and on the instances of one shared
  # "default" scenario, skipping each scenario's create and destroy.
  lane() {
    local s
    for s in "$@"; do molecule test -s "$s" || return 1; done
  }
  lane_a=(check_mode el7 el9)
  lane_b=(debian el8 reaper)
  every=$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done | sort)
  if [[ $every != "$(printf '%s\n' "${lane_a[@]}" "${lane_b[@]}" | sort)" ]]; then
    echo "the molecule lanes must list every scenario in molecule/: $every" >&2
    exit 1
  fi
  lane_logs=$(mktemp -d)
  lane "${lane_a[@]}" >"$lane_logs/a" 2>&1 & pid_a=$!
  lane "${lane_b[@]}" >"$lane_logs/b" 2>&1 & pid_b=$!
  rc_a=0 rc_b=0
  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  cat "$lane_logs/a" "$lane_logs/b"
  rm -rf "$lane_logs"
  if [[ $rc_a -ne 0 || $rc_b -ne 0 ]]; then
    echo "molecule failed (lane check_mode/el7/el9: rc=$rc_a, lane debian/el8/reaper: rc=$rc_b)" >&2
    exit 1
  fi
  # podman leaves the scenarios' (empty) --cgroup-parent behind
  python -c 'from tests.targets.target import remove_cgroup_parent; remove_cgroup_parent()'
fi

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - started ))"
