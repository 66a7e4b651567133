"""Shared plumbing for the test targets: cache paths, the build lock, podman's
environment, the ssh key, and a subprocess wrapper that fails with a readable
message.

Everything expensive lives under ``$MEMCG_FIX_CACHE/targets`` (default
``/var/cache/memcg-fix-dev/targets``), outside the repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
LAYOUTS = HERE / "layouts"
STANDINS = HERE / "standins"

KINDS = ("debian", "el7", "el8", "el9")
CONTAINER_PREFIX = "memcg-fix-test-"
# Overridable so two checkouts that build different recipes side by side do
# not prune each other's images (each build drops the other tags of its kind).
IMAGE_PREFIX = os.environ.get("MEMCG_FIX_IMAGE_PREFIX", "localhost/memcg-fix-target-")
CGROUP_PARENT = "/memcg-fix-test-podman"
TEST_USER = "tester"

# podman on this machine kind needs runc (crun refuses the hybrid cgroup
# layout), cgroupfs (systemd is not PID 1 on the host) and ulimits below the
# shell's hard limits. It reads this file through CONTAINERS_CONF; /etc is
# never touched.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=30000:30000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


class TargetError(Exception):
    """A test target could not be built, started or reached."""


def cache_dir() -> Path:
    root = Path(os.environ.get("MEMCG_FIX_CACHE", "/var/cache/memcg-fix-dev"))
    path = root / "targets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def child_stdin(data: bytes | None) -> dict[str, Any]:
    """``input=data``, or /dev/null of the child's own. Never the inherited
    stdin: ssh makes its stdin non-blocking and, when a timeout kills it,
    leaves it so, and every later ansible-playbook sharing that stdin then
    refuses to start ("Ansible requires blocking IO")."""
    return {"input": data} if data is not None else {"stdin": subprocess.DEVNULL}


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float | None = 1800,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; on failure raise TargetError carrying the tail of its output."""
    argv = [os.fspath(c) for c in cmd]
    try:
        proc = subprocess.run(
            argv,
            **child_stdin(input),
            env=env,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TargetError(f"timed out after {timeout}s: {' '.join(argv)[:200]}") from exc
    except FileNotFoundError as exc:
        raise TargetError(f"command not found: {argv[0]} (run scripts/setup-dev.sh)") from exc
    if check and proc.returncode != 0:
        tail = (proc.stdout or b"").decode(errors="replace")[-3000:]
        raise TargetError(f"exit {proc.returncode}: {' '.join(argv)[:300]}\n{tail}")
    return proc


_LOCK = threading.RLock()
_lock_depth = 0
_lock_file: IO[str] | None = None


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One builder at a time across processes (two pytest runs, xdist workers).

    Re-entrant within a process: flock() on a second descriptor of the same
    file would deadlock against ourselves.
    """
    global _lock_depth, _lock_file
    with _LOCK:
        if _lock_depth == 0:
            _lock_file = open(cache_dir() / ".build.lock", "a+")
            fcntl.flock(_lock_file, fcntl.LOCK_EX)
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
            if _lock_depth == 0 and _lock_file is not None:
                fcntl.flock(_lock_file, fcntl.LOCK_UN)
                _lock_file.close()
                _lock_file = None


def podman_env() -> dict[str, str]:
    conf = cache_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        tmp = conf.with_suffix(".tmp")
        tmp.write_text(CONTAINERS_CONF)
        tmp.replace(conf)
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf)
    return env


def podman(*args: str, check: bool = True, timeout: float = 600,
           input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return run(["podman", *args], check=check, timeout=timeout, input=input, env=podman_env())


def ssh_key() -> Path:
    """The private key that reaches every test target (generated once, cached)."""
    keydir = cache_dir() / "ssh"
    key = keydir / "id_ed25519"
    with build_lock():
        if not (key.exists() and key.with_suffix(".pub").exists()):
            keydir.mkdir(mode=0o700, exist_ok=True)
            for stale in (key, key.with_suffix(".pub")):
                stale.unlink(missing_ok=True)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "memcg-fix-test",
                 "-f", key])
    return key


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path) -> str:
    """Digest of a directory's names, modes, link targets and contents."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "__pycache__" in dirnames:
            dirnames.remove("__pycache__")
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + linked_dirs):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0")
            if path.is_symlink():
                digest.update(b"L" + os.readlink(path).encode() + b"\0")
            else:
                digest.update(b"%o\0" % (path.stat().st_mode & 0o7777))
                digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def random_suffix() -> str:
    return secrets.token_hex(4)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path (from /proc/self/mountinfo)."""
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def safe_rmtree(path: Path) -> None:
    """rmtree that refuses to descend into anything still mounted (a chroot's
    /proc, /sys or /dev left behind by a crash must never be deleted through)."""
    if not path.exists() and not path.is_symlink():
        return
    mounted = mounts_under(path)
    if mounted:
        raise TargetError(f"refusing to delete {path}: still mounted: {', '.join(mounted)}")
    shutil.rmtree(path)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5,
             what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TargetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


SSH_OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=10",
    "-o", "IdentitiesOnly=yes",
)


def ssh_argv(user: str, address: str, port: int, key: Path, *,
             connect_timeout: int = 10) -> list[str]:
    argv = ["ssh", *SSH_OPTIONS, "-o", f"ConnectTimeout={connect_timeout}",
            "-i", str(key), "-p", str(port), f"{user}@{address}"]
    return argv


def ssh_works(user: str, address: str, port: int, key: Path) -> bool:
    try:
        proc = subprocess.run(
            [*ssh_argv(user, address, port, key, connect_timeout=5), "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0
