"""Zombie memcgs of ssh logins, and reclaim before rmdir on cgroup v2, in a real guest.

Boots a VM of its own from the test VM image (Debian 12, kernel 6.1, cgroup
v2; a qcow2 overlay, so the image never changes; tests/targets/vm.py), copies
bench/guest/session_memcgs.py into it and runs it once as root over one ssh
session (the logins it measures are made inside the guest, to localhost, so
the driver's own ssh session adds no noise). Prints the results as Markdown
for docs/efficacy.md and, with --out, writes them as JSON. The VM is powered
off and its overlay removed at the end, also on error or Ctrl-C.

    python bench/bench_vm_memcgs.py --logins 50 --out /tmp/vm-memcgs.json

Under TCG (no KVM here) a login takes about 1-3 s; the whole run about 10 to
15 minutes. It is run by hand for the documentation, not in CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.targets.target import create_vm  # noqa: E402 - after the path is set

GUEST_SCRIPT = REPO / "bench" / "guest" / "session_memcgs.py"


def markdown(doc: dict[str, Any], command: str) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} in the test VM (kernel `{doc['kernel']}`, cgroup v2, QEMU/TCG, "
        f"2 vCPUs), with `{command}`.",
        "",
        "| sshd PAM stack | logins | dying before | after | dying per login "
        "| wtmp written | new /var/log/wtmp pages charged to | new /var/log/lastlog pages "
        "charged to |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in doc["logins"]:
        new = arm.get("charged_new", arm["charged"])
        lines.append(
            f"| {arm['stack']} | {arm['logins']} | {arm['dying_before']} | {arm['dying_after']} "
            f"| {arm['dying_per_login']:+.2f} | {arm['wtmp_bytes_written']} B "
            f"| {_where(new['/var/log/wtmp'])} | {_where(new['/var/log/lastlog'])} |"
        )
    lines += [
        "",
        f"Cgroup v2 reclaim before rmdir, {doc['reclaim'][0]['n']} memory cgroups per arm, "
        f"each charged with 256 KiB of its own page cache (memory.reclaim present: "
        f"{'yes' if doc['memory_reclaim_exists'] else 'no'}):",
        "",
        "| before rmdir | charged per cgroup | dying before | after | delta "
        "| still charged below the arm |",
        "|---|---|---|---|---|---|",
    ]
    labels = {"plain": "nothing (plain rmdir)",
              "reclaim": "`memory.reclaim` (what memcg-fix-rmdir writes on v2)",
              "high": "`0` to `memory.high`"}
    for arm in doc["reclaim"]:
        lines.append(
            f"| {labels.get(arm['arm'], arm['arm'])} | {arm['charged_mean_bytes'] // 1024} KiB "
            f"| {arm['dying_before']} "
            f"| {arm['dying_after']} | {arm['delta']:+d} "
            f"| {arm['still_charged_below_bytes'] // 1024} KiB |"
        )
    return "\n".join(lines) + "\n"


def _where(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{where}: {n}" for where, n in sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=50, help="logins per PAM stack")
    parser.add_argument("--out", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    command = f"python bench/bench_vm_memcgs.py --logins {args.logins}"
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-vm-") as tmp:
        vm = create_vm(Path(tmp))
        try:
            # booted by hand: under TCG on a loaded machine the guest can need far
            # longer than the test fixture's limits
            assert vm.qemu is not None
            started = time.monotonic()
            vm.qemu.start()
            vm.port = vm.qemu.port
            vm.qemu.wait_ssh(timeout=3600)
            sys.stderr.write(f"bench: VM up in {time.monotonic() - started:.0f}s\n")
            vm.write_file("/root/session_memcgs.py", GUEST_SCRIPT.read_bytes())
            proc = vm.run(["python3", "/root/session_memcgs.py", str(args.logins)],
                          timeout=7200)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
                return 1
            doc = json.loads(proc.stdout)
        finally:
            vm.destroy()
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(markdown(doc, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
