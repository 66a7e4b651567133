#!/usr/bin/env bash
# Prepare this machine to develop and test memcg-fix. Idempotent.
#
# - apt packages the test targets need (podman, runc, debootstrap, qemu...);
# - a virtualenv per supported ansible-core line ("current" and "2.16", the
#   newest that still manages Python 2.7/3.6 targets), each with memcg-fix
#   installed editable plus the test tools;
# - the few collections the tests use (containers.podman for molecule's podman
#   driver, ansible.posix), taken from the PyPI "ansible" bundle because
#   Galaxy may be unreachable.
#
# Everything expensive is cached under $MEMCG_FIX_CACHE (default
# /var/cache/memcg-fix-dev), outside the repository, and rebuilt when missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${MEMCG_FIX_CACHE:-/var/cache/memcg-fix-dev}
python=${MEMCG_FIX_PYTHON:-python3}
mkdir -p "$cache"

log() { printf '[setup-dev] %s\n' "$*" >&2; }

apt_packages=(
  podman runc debootstrap qemu-system-x86 qemu-utils openssh-client sshpass
  python3-venv rsync hyperfine time e2fsprogs iproute2 ca-certificates
  rpm  # the real rpm, to cross-check version ordering
  # test targets (tests/targets/build.py): podman's network stack when
  # recommends are skipped, and what debootstrap verifies the archive with
  netavark aardvark-dns debian-archive-keyring gpgv tar
  iptables  # netavark (Debian 12) sets up the bridge network with it
  gnupg  # gpg: tests sign and verify rendered playbooks (detached signatures)
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

# One venv per ansible-core line. The stamp holds what the venv was built
# from, so a change to pyproject.toml or to this script rebuilds it.
stamp_of() { cat "$here/pyproject.toml" "$0" | sha256sum | cut -c1-16; echo "$1"; }

# Whether the venv imports memcg-fix from this checkout. Asked from / in
# isolated mode: from the checkout, the current directory on sys.path would
# import this checkout's package whatever the venv's editable install points
# at, and a venv left pointing at a deleted clone would fail only in the tests
# that run the command from another directory.
imports_this_checkout() {
  (cd / && "$1/bin/python" -I -c 'import os, sys, remediate
sys.exit(0 if os.path.realpath(remediate.__file__ or "") == sys.argv[1] else 1)' \
     "$(realpath "$here/remediate/__init__.py")") 2>/dev/null
}

build_venv() {
  local name=$1 core_spec=$2 extra=$3
  local dir="$cache/venv-$name" stamp
  stamp=$(stamp_of "$core_spec $extra")
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    # editable install: re-point it at this checkout if it points elsewhere
    if ! imports_this_checkout "$dir"; then
      "$dir/bin/pip" install -q --no-deps -e "$here" >/dev/null
    fi
  else
    log "building $dir ($core_spec)"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    "$dir/bin/pip" install -q "$core_spec" -e "$here[test]" $extra 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$dir/bin/python" -c 'import ansible' >/dev/null
  fi
  if ! imports_this_checkout "$dir"; then
    log "$dir does not import memcg-fix from $here"
    exit 1
  fi
  echo "$stamp" >"$dir/.stamp"  # only once the venv is known to work
}

build_venv current "ansible-core>=2.19" "ansible-runner ansible-lint molecule molecule-plugins[podman] pytest-xdist pyinstrument"
build_venv 2.16 "ansible-core>=2.16,<2.17" "ansible-runner pytest-xdist"

# Collections from the PyPI bundle (one download, cached, only two unpacked).
collections="$cache/collections"
if [ ! -f "$collections/.ok" ]; then
  log "unpacking containers.podman and ansible.posix from the PyPI 'ansible' bundle"
  tmp=$(mktemp -d)
  "$cache/venv-current/bin/pip" download -q --no-deps 'ansible>=11' -d "$tmp" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  rm -rf "$collections" && mkdir -p "$collections"
  "$cache/venv-current/bin/python" - "$tmp"/ansible-*.whl "$collections" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
keep = ("ansible_collections/containers/podman/", "ansible_collections/ansible/posix/")
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(dest, [n for n in zf.namelist() if n.startswith(keep)])
PY
  rm -rf "$tmp"
  touch "$collections/.ok"
fi
# node_exporter, so a test can feed the reaper's metrics file to the real
# textfile collector. Unpacked from the Debian package, never installed: no
# service is started.
node_exporter="$cache/tools/node-exporter/usr/bin/prometheus-node-exporter"
if [ ! -x "$node_exporter" ] && command -v apt-get >/dev/null 2>&1; then
  log "unpacking prometheus-node-exporter (for the reaper's metrics test)"
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  if (cd "$tmp" && apt-get download -qq prometheus-node-exporter </dev/null >/dev/null 2>&1); then
    rm -rf "$cache/tools/node-exporter" && mkdir -p "$cache/tools/node-exporter"
    dpkg -x "$tmp"/prometheus-node-exporter_*.deb "$cache/tools/node-exporter"
  else
    log "could not download prometheus-node-exporter; the metrics format test will skip"
  fi
  rm -rf "$tmp"
fi

log "ready: $cache/venv-current (ansible-core $("$cache/venv-current/bin/python" -c 'import ansible.release as r; print(r.__version__)')), $cache/venv-2.16, $collections"
