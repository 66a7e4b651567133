"""Running test targets: podman containers and a QEMU VM, reached over ssh.

A ``Target`` is what tests get from the fixtures in tests/conftest.py. Ansible
reaches it over ssh as the non-root user ``tester`` (passwordless sudo), like a
production host; ``run``/``read_file``/``write_file`` act as root through
``podman exec`` (containers) or ssh as root (VM) for test set-up and asserts.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.targets.build import ensure_image, ensure_vm_image
from tests.targets.common import (
    CGROUP_PARENT,
    CONTAINER_PREFIX,
    TEST_USER,
    TargetError,
    child_stdin,
    podman,
    podman_env,
    random_suffix,
    run,
    ssh_argv,
    ssh_key,
    ssh_works,
    wait_for,
)
from tests.targets.vm import Qemu

# Walks trees on the target (python3 is on every image) and prints
# {path: sha256}; molecule's check_mode scenario runs the same file.
_CHECKSUM_SCRIPT = (Path(__file__).parent / "checksums.py").read_text()

_CONTROL_DIR = Path(tempfile.gettempdir()) / "memcg-fix-cp"

# What this process started, so the end-of-session check can find leftovers.
_REGISTRY_LOCK = threading.Lock()
_STARTED_CONTAINERS: dict[str, str] = {}  # name -> container id
_STARTED_VMS: list[Qemu] = []


@dataclass
class Target:
    name: str
    kind: str
    address: str
    port: int
    user: str
    key_path: Path
    inventory_vars: dict[str, Any] = field(default_factory=dict)

    # -- how to run a command as root on the target (subclasses)
    def _root_argv(self, cmd: list[str]) -> list[str]:
        raise NotImplementedError

    def _root_env(self) -> dict[str, str] | None:
        return None

    def run(self, cmd: list[str], *, check: bool = False, input: bytes | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        """Run cmd as root on the target; stdout and stderr captured apart."""
        argv = self._root_argv(cmd)
        try:
            proc = subprocess.run(argv, **child_stdin(input), capture_output=True, timeout=timeout,
                                  env=self._root_env(), check=False)
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"{self.name}: timed out after {timeout}s: {shlex.join(cmd)}") from exc
        if check and proc.returncode != 0:
            raise TargetError(f"{self.name}: exit {proc.returncode}: {shlex.join(cmd)}\n"
                              f"{proc.stderr.decode(errors='replace')[-2000:]}")
        return proc

    def sh(self, script: str, *, timeout: float = 300) -> str:
        """Run a shell snippet as root; return stdout (raises on failure)."""
        return self.run(["/bin/sh", "-c", script], check=True, timeout=timeout).stdout.decode()

    def read_file(self, path: str) -> bytes:
        return self.run(["cat", "--", path], check=True).stdout

    def write_file(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self.run(["/bin/sh", "-c", 'cat > "$1"', "sh", path], input=payload, check=True)
        if mode is not None:
            self.run(["chmod", f"{mode:o}", path], check=True)

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path]).returncode == 0

    def tree_checksums(self, paths: tuple[str, ...] | list[str] = ("/etc", "/boot"),
                       *, metadata: bool = False) -> dict[str, str]:
        """{path: sha256} of every file and symlink below paths (for "no byte
        changed" checks); metadata=True also folds in mode and owner, and
        records directories."""
        out = self.run(["python3", "-c", _CHECKSUM_SCRIPT, "1" if metadata else "0",
                        *paths], check=True, timeout=600).stdout
        result: dict[str, str] = json.loads(out)
        return result

    def ssh_command(self, user: str | None = None) -> list[str]:
        return ssh_argv(user or self.user, self.address, self.port, self.key_path)

    def ssh(self, command: str, *, user: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run a command over ssh as a login user (tester by default)."""
        return subprocess.run([*self.ssh_command(user), command], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)


def _inventory_vars(name: str, kind: str, address: str, port: int, key: Path) -> dict[str, Any]:
    _CONTROL_DIR.mkdir(mode=0o700, exist_ok=True)
    return {
        "ansible_host": address,
        "ansible_port": port,
        "ansible_user": TEST_USER,
        "ansible_ssh_private_key_file": str(key),
        "ansible_python_interpreter": "/usr/bin/python3",
        # one control socket per target: ports are reused by later targets
        "ansible_ssh_args": ("-C -o ControlMaster=auto -o ControlPersist=60s "
                             f"-o ControlPath={_CONTROL_DIR}/{name}"),
        "ansible_ssh_common_args": ("-o StrictHostKeyChecking=no "
                                    "-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"),
        "ansible_ssh_pipelining": True,
        "memcg_fix_test_kind": kind,
    }


def _close_control_socket(name: str) -> None:
    sock = _CONTROL_DIR / name
    if sock.exists():
        subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "x"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10, check=False)
        sock.unlink(missing_ok=True)


# ---------------------------------------------------------------- containers


@dataclass
class ContainerTarget(Target):
    container_id: str = ""
    image: str = ""

    def _root_argv(self, cmd: list[str]) -> list[str]:
        return ["podman", "exec", "-i", self.name, *cmd]

    def _root_env(self) -> dict[str, str] | None:
        return podman_env()

    def destroy(self) -> None:
        _close_control_socket(self.name)
        podman("rm", "-f", "-t", "0", self.name, check=False, timeout=120)
        with _REGISTRY_LOCK:
            _STARTED_CONTAINERS.pop(self.name, None)

    def host_pid(self) -> int:
        """PID (in this machine's namespace) of the container's init."""
        out = podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.decode()
        pid = int(out.strip() or 0)
        if pid <= 0:
            raise TargetError(f"{self.name} is not running")
        return pid

    def in_namespaces(self, script: str, *, timeout: float = 60) -> str:
        """Run a shell snippet in the container's mount and pid namespaces with
        this machine's privileges; returns stdout (raises on failure).

        A rootful podman container has no CAP_SYS_ADMIN, so nothing inside it
        can mount. Faults a host can really have (/etc read-only, a full small
        filesystem) are made from outside instead: the mount exists only in the
        container's namespace, and the target's own processes get the kernel's
        real EROFS / ENOSPC from it.
        """
        argv = ["nsenter", "--target", str(self.host_pid()), "--mount", "--pid", "--",
                "/bin/sh", "-c", script]
        proc = run(argv, check=False, timeout=timeout)
        if proc.returncode != 0:
            raise TargetError(f"{self.name}: in-namespace script failed (exit {proc.returncode}):"
                              f" {script}\n{proc.stdout.decode(errors='replace')[-2000:]}")
        return proc.stdout.decode()

    def restart(self, timeout: float = 90) -> None:
        """Stop every process of the container at once and boot it again (the
        container's power cycle); the published ssh port stays the same."""
        _close_control_socket(self.name)
        podman("restart", "-t", "0", self.name, timeout=180)
        mapping = podman("port", self.name, "22/tcp").stdout.decode().strip().splitlines()[0]
        port = int(mapping.rsplit(":", 1)[1])
        if port != self.port:
            raise TargetError(f"{self.name}: ssh moved from port {self.port} to {port} "
                              "after a restart; inventories written earlier are stale")
        wait_for(lambda: ssh_works(TEST_USER, self.address, self.port, self.key_path), timeout,
                 interval=0.3, what=f"sshd in {self.name} after a restart")


def _start_one(kind: str, image: str, key: Path) -> ContainerTarget:
    name = f"{CONTAINER_PREFIX}{kind}-{random_suffix()}"
    proc = podman("run", "-d", "--name", name, "--hostname", name,
                  "--systemd=always", f"--cgroup-parent={CGROUP_PARENT}",
                  "--publish", "127.0.0.1::22", "--label", "memcg-fix-test=1",
                  image, "/sbin/init", check=False, timeout=180)
    if proc.returncode != 0:
        podman("rm", "-f", "-t", "0", name, check=False)
        raise TargetError(f"podman run {name} failed: {proc.stdout.decode(errors='replace')}")
    container_id = proc.stdout.decode().strip().splitlines()[-1]
    with _REGISTRY_LOCK:
        _STARTED_CONTAINERS[name] = container_id
    target = ContainerTarget(name=name, kind=kind, address="127.0.0.1", port=0, user=TEST_USER,
                             key_path=key, container_id=container_id, image=image)
    try:
        mapping = podman("port", name, "22/tcp").stdout.decode().strip().splitlines()[0]
        target.port = int(mapping.rsplit(":", 1)[1])
        target.inventory_vars = _inventory_vars(name, kind, target.address, target.port, key)
        wait_for(lambda: ssh_works(TEST_USER, target.address, target.port, key), 90,
                 interval=0.2, what=f"sshd in {name}")
    except BaseException:
        target.destroy()
        raise
    return target


def start_containers(kinds: list[str], *, workers: int = 8) -> list[ContainerTarget]:
    """Start one container per entry of kinds, in parallel; all or nothing."""
    if not kinds:
        return []
    key = ssh_key()
    images = {kind: ensure_image(kind) for kind in dict.fromkeys(kinds)}
    started: list[ContainerTarget] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=min(workers, len(kinds))) as pool:
        futures = [pool.submit(_start_one, kind, images[kind], key) for kind in kinds]
        for future in futures:
            try:
                started.append(future.result())
            except BaseException as exc:  # collect, then clean up what did start
                errors.append(exc)
    if errors:
        destroy_all(started)
        raise errors[0]
    return started


def destroy_all(targets: list[ContainerTarget]) -> None:
    if not targets:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        list(pool.map(lambda t: t.destroy(), targets))


# ---------------------------------------------------------------- VM


@dataclass
class VmTarget(Target):
    qemu: Qemu | None = None
    overlay: Path | None = None
    workdir: Path | None = None
    last_boot_seconds: float = 0.0

    def _root_argv(self, cmd: list[str]) -> list[str]:
        return [*ssh_argv("root", self.address, self.port, self.key_path), shlex.join(cmd)]

    @property
    def serial_log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "serial.log"

    def start(self, timeout: float = 400) -> float:
        """Boot the guest (from the overlay) and wait for ssh; returns seconds."""
        assert self.qemu is not None
        self.qemu.start()
        with _REGISTRY_LOCK:
            if self.qemu not in _STARTED_VMS:
                _STARTED_VMS.append(self.qemu)
        self.port = self.qemu.port
        self.inventory_vars = _inventory_vars(self.name, self.kind, self.address, self.port,
                                              self.key_path)
        started = time.monotonic()
        self.qemu.wait_ssh(timeout=timeout)
        wait_for(lambda: ssh_works(TEST_USER, self.address, self.port, self.key_path),
                 60, interval=1, what="ssh as tester")
        self.last_boot_seconds = time.monotonic() - started
        return self.last_boot_seconds

    def boot_id(self) -> str:
        return self.read_file("/proc/sys/kernel/random/boot_id").decode().strip()

    def cmdline(self) -> str:
        return self.read_file("/proc/cmdline").decode().strip()

    def wait_for_new_boot(self, old_boot_id: str, timeout: float = 400) -> float:
        started = time.monotonic()

        def rebooted() -> bool:
            if not ssh_works("root", self.address, self.port, self.key_path):
                return False
            return self.boot_id() != old_boot_id

        wait_for(rebooted, timeout, interval=3, what=f"{self.name} to come back")
        return time.monotonic() - started

    def reboot_and_wait(self, timeout: float = 400) -> float:
        """Reboot through the guest's own systemd; returns the round trip in s."""
        old = self.boot_id()
        started = time.monotonic()
        self.run(["systemctl", "reboot"], timeout=30)
        self.wait_for_new_boot(old, timeout=timeout)
        return time.monotonic() - started

    def poweroff(self, timeout: float = 120) -> None:
        assert self.qemu is not None
        _close_control_socket(self.name)
        self.qemu.poweroff(timeout=timeout)
        self.qemu.kill()

    def kill(self) -> None:
        """Hard stop of our own qemu process (SIGKILL by pid)."""
        assert self.qemu is not None
        _close_control_socket(self.name)
        self.qemu.kill()

    def running(self) -> bool:
        return self.qemu is not None and self.qemu.running()

    def destroy(self) -> None:
        if self.qemu is not None:
            self.kill()
            with _REGISTRY_LOCK:
                if self.qemu in _STARTED_VMS:
                    _STARTED_VMS.remove(self.qemu)
        if self.overlay is not None:
            self.overlay.unlink(missing_ok=True)


def create_vm(workdir: Path) -> VmTarget:
    """A VM on a fresh qcow2 overlay of the cached base disk (not yet booted)."""
    base = ensure_vm_image()
    workdir.mkdir(parents=True, exist_ok=True)
    overlay = workdir / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay])
    name = f"{CONTAINER_PREFIX}vm-{random_suffix()}"
    target = VmTarget(name=name, kind="vm", address="127.0.0.1", port=0, user=TEST_USER,
                      key_path=ssh_key(), overlay=overlay, workdir=workdir)
    target.qemu = Qemu(overlay, fmt="qcow2", log_path=workdir / "serial.log")
    return target


# ---------------------------------------------------------------- inventory


def write_inventory(targets: list[Target] | tuple[Target, ...], path: Path | str,
                    group: str = "targets", extra_vars: dict[str, Any] | None = None) -> Path:
    """Write a YAML inventory with every target in one group; returns the path."""
    inventory = {
        "all": {
            "children": {
                group: {
                    "hosts": {t.name: dict(t.inventory_vars) for t in targets},
                    "vars": dict(extra_vars or {}),
                }
            }
        }
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return out


# ---------------------------------------------------------------- leftovers


def leftovers() -> list[str]:
    """Containers, VMs and container cgroups this process started that still exist."""
    found: list[str] = []
    with _REGISTRY_LOCK:
        names = dict(_STARTED_CONTAINERS)
        vms = list(_STARTED_VMS)
    if names:
        listed = podman("ps", "-a", "--format", "{{.Names}}", check=False).stdout.decode()
        found += [f"container {n}" for n in listed.split() if n in names]
        for container_id in names.values():
            for cg in Path("/sys/fs/cgroup").glob(
                    f"*{CGROUP_PARENT}/libpod-{container_id}*"):
                found.append(f"cgroup {cg}")
    found += [f"qemu pid {vm.pid}" for vm in vms if vm.running()]
    return found


def clean_leftovers() -> None:
    with _REGISTRY_LOCK:
        names = list(_STARTED_CONTAINERS)
        vms = list(_STARTED_VMS)
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)
        _close_control_socket(name)
    for vm in vms:
        vm.kill()
    with _REGISTRY_LOCK:
        _STARTED_CONTAINERS.clear()
        _STARTED_VMS.clear()


def remove_cgroup_parent() -> None:
    """Remove the containers' --cgroup-parent where it is empty. podman leaves
    it (and its conmon child) in every controller after the last container is
    gone; rmdir refuses a cgroup that still has tasks or children, so nothing
    in use is touched."""
    name = CGROUP_PARENT.strip("/")
    root = Path("/sys/fs/cgroup")
    for parent in [root / name, *root.glob(f"*/{name}")]:
        if not parent.is_dir():
            continue
        for cgroup in sorted(parent.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            try:
                cgroup.rmdir()
            except OSError:
                pass  # busy: a container (or molecule's) still runs there
