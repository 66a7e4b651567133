"""A QEMU guest under TCG with sshd on a forwarded loopback port.

KVM is not usable on this machine kind (a stock kernel hangs under the
kvm_pvm backend), so the guest runs under ``-accel tcg,thread=multi -cpu max``.
The serial console goes to a log file, which error messages quote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.targets.common import (
    TargetError,
    free_port,
    run,
    ssh_argv,
    ssh_key,
    ssh_works,
    wait_for,
)

QEMU = "qemu-system-x86_64"
MEMORY_MB = 2048
CPUS = 2


class Qemu:
    """One qemu process we started, known by its pid (never by name)."""

    def __init__(self, disk: Path, *, fmt: str = "qcow2", log_path: Path,
                 kernel: tuple[Path, Path, str] | None = None):
        self.disk = disk
        self.fmt = fmt
        self.log_path = log_path
        self.kernel = kernel
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ssh_key()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running():
            raise TargetError("VM already running")
        for attempt in range(5):
            # keep the forwarded port across restarts while it is free, so that
            # inventories written earlier stay valid
            if not self.port or attempt > 1:
                self.port = free_port()
            argv = [
                QEMU, "-accel", "tcg,thread=multi", "-cpu", "max",
                "-m", str(MEMORY_MB), "-smp", str(CPUS),
                "-display", "none", "-monitor", "none", "-nodefaults",
                "-serial", f"file:{self.log_path}",
                "-drive", f"file={self.disk},format={self.fmt},if=virtio,cache=unsafe",
                "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device", "virtio-net-pci,netdev=n0,romfile=",
            ]
            if self.kernel:
                vmlinuz, initrd, append = self.kernel
                argv += ["-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", append]
            # own session: a Ctrl-C to pytest does not reach qemu half-way
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            time.sleep(0.5)
            if self.proc.poll() is None:
                return
            out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
            self.proc = None
            if "Could not set up host forwarding" not in out:
                raise TargetError(f"qemu exited at start: {out[-2000:]}")
            time.sleep(1)
        raise TargetError("qemu could not bind a forwarded ssh port after 5 attempts")

    def serial_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no serial log)"

    def wait_ssh(self, timeout: float = 300, user: str = "root") -> float:
        started = time.monotonic()

        def up() -> bool:
            if not self.running():
                raise TargetError("qemu exited while booting; serial console:\n"
                                  + self.serial_tail())
            return ssh_works(user, "127.0.0.1", self.port, self.key)

        try:
            wait_for(up, timeout, interval=2, what="ssh into the VM")
        except TargetError as exc:
            raise TargetError(f"{exc}; serial console:\n{self.serial_tail()}") from exc
        return time.monotonic() - started

    def ssh(self, command: str, *, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        argv = [*ssh_argv("root", "127.0.0.1", self.port, self.key), command]
        return run(argv, check=check, timeout=timeout)

    def poweroff(self, timeout: float = 120) -> None:
        if not self.running():
            return
        self.ssh("systemctl poweroff", check=False, timeout=30)
        try:
            assert self.proc is not None
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"VM did not power off within {timeout}s") from exc

    def kill(self) -> None:
        """Hard stop of our own qemu process (by pid)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
