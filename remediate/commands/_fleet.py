"""Shared pieces of the commands that drive Ansible against a fleet."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from .. import policy as policy_api
from ..errors import InputError
from ..policy.model import Policy
from ..render import APPLY_PLAY, PlaybookCheck, check
from ..report import terminal_safe
from ..run import DEFAULT_VIA, GATHER_VIA, Progress
from . import tell


def add_inventory_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="INVENTORY",
        action="append",
        required=required,
        help="Ansible inventory (file, directory or plugin config); repeatable",
    )
    parser.add_argument(
        "--limit", metavar="PATTERN", help="only hosts matching this Ansible host pattern"
    )
    parser.add_argument(
        "--forks",
        metavar="N",
        type=int,
        help="hosts Ansible works on in parallel (Ansible's default: 5)",
    )


def add_via_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--via raw|module``: how facts are read from an inventory's hosts."""
    parser.add_argument(
        "--via",
        choices=tuple(GATHER_VIA),
        help="with -i: how facts are read, one round trip per host: raw (default: one shell "
        "command that runs the collector on the host's own Python) or module (the "
        "memcg_facts Ansible module); both give the same facts",
    )


def via(args: argparse.Namespace) -> str:
    return str(getattr(args, "via", None) or DEFAULT_VIA)


def out_dir(requested: str | None, verb: str) -> Path:
    """The output directory: given, or a new timestamped one in the current directory."""
    if requested:
        path = Path(requested)
    else:
        path = Path(f"memcg-fix-{verb}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {path}: cannot create it: {exc.strerror or exc}") from None
    return path


def progress_printer(quiet: bool = False):  # type: ignore[no-untyped-def]
    """A callback printing rollout progress on stderr (hosts done, batch, reboots)."""
    state = {"batches": 0, "hosts": 0}

    def show(event: Progress) -> None:
        if quiet:
            return
        if event.kind == "play" and event.text == APPLY_PLAY:
            # with `serial`, Ansible starts the play again for every batch
            state["batches"] += 1
            which = " (canary)" if state["batches"] == 1 else ""
            tell(f"batch {state['batches']}{which}")
        elif event.kind == "reboot":
            tell(f"  {terminal_safe(event.host)}: {terminal_safe(event.text)}")
        elif event.kind == "host":
            state["hosts"] += 1
            tell(f"  [{state['hosts']} done] {terminal_safe(event.host)}: "
                 f"{terminal_safe(event.text)}")

    return show


def load_policy(path: str | None) -> Policy:
    return policy_api.load(path) if path else policy_api.load_default()


def read_playbook(path: str, *, force: bool) -> tuple[str, PlaybookCheck, list[str]]:
    """Read and check a rendered playbook; refuse an edited one unless ``force``.

    Returns the text, the check and warnings to print (what --force overrode).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"playbook not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read playbook {path}: {exc}") from None
    result = check(text)
    warnings = []
    if result.problems:
        message = f"{path} was edited after memcg-fix rendered it: {'; '.join(result.problems)}"
        if not force:
            raise InputError(message + " (render it again, or use --force to run it anyway)")
        warnings.append(message + " (running anyway: --force)")
    signature = file.with_name(file.name + ".asc")
    if signature.exists():
        ok, detail = verify_signature(file, signature)
        if not ok and not force:
            raise InputError(f"the signature {signature} does not verify: {detail}")
        if not ok:
            warnings.append(f"the signature {signature} does not verify (running anyway: --force)")
    return text, result, warnings


def verify_signature(playbook: Path, signature: Path) -> tuple[bool, str]:
    """Verify a detached OpenPGP signature with gpg, when one sits next to the playbook."""
    try:
        proc = subprocess.run(
            ["gpg", "--batch", "--verify", str(signature), str(playbook)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        return False, "gpg is not installed"
    except subprocess.TimeoutExpired:
        return False, "gpg timed out"
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return proc.returncode == 0, last
