"""One sanitizer for every human-facing output, and a playbook that always loads.

The nasty corpus below holds what a host can put in its name, its
/etc/os-release or a kernel log line that a terminal acts on (ESC sequences:
CSI, OSC title and hyperlinks; BEL; the one-character C1 CSI), that reorders
or hides text (bidi overrides and isolates, zero-width characters), that YAML
refuses ("unacceptable character #x009b"; lone surrogates; U+FFFE) or reads
as a line break (NEL, U+2028). Each string reaches, through the real command
line: detect's table (from a host root and ``--host``), plan's table,
``--explain``, Markdown and JSON, stderr lines, and the rendered playbook,
which must still pass ``ansible-playbook --syntax-check`` and ansible-lint.
"""

from __future__ import annotations

import copy
import html
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.text import shown
from tests.targets.ansible import ansible_bin, ansible_env

REPO = Path(__file__).resolve().parents[2]
BASES = yaml.safe_load((REPO / "policies" / "cases" / "_bases.yaml").read_text())

NASTY = {
    "csi-clear": "web\x1b[2J\x1b[Hroot",
    "osc-title": "\x1b]0;you have been pwned\x07host",
    "osc8-link": "\x1b]8;;http://evil.invalid/\x1b\\click\x1b]8;;\x1b\\",
    "bell": "ding\x07\x07",
    "c1-csi": "cache\x9b2Jname",
    "c1-osc": "\x9d0;title\x9c",
    "del-backspace": "abc\x7f\x08\x08x",
    "nul-cr": "a\x00b\rc",
    "bidi-override": "txt.\u202eexe",
    "bidi-isolate": "\u2066admin\u2069",
    "zero-width": "ad\u200bmin\ufeff",
    "line-separators": "one\u2028two\u2029three\x85four",
    "lone-surrogate": "host\ud800",
    "low-surrogate": "\udcff-tail",
    "noncharacter": "x\ufffey\uffff",
    "tag-character": "flag\U000e0041",
    "nbsp": "a\u00a0b",
}

# what no human-facing output may hold, whatever the host said
FORBIDDEN = {chr(c) for c in range(0x20)} - {"\n"} | {chr(c) for c in range(0x7F, 0xA0)} | {
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200b", "\ufeff", "\u2028", "\u2029", "\ufffe", "\uffff", "\U000e0041", "\u00a0"}


def _bad_characters(text: str) -> set[str]:
    return {ch for ch in text if ch in FORBIDDEN or unicodedata.category(ch) == "Cs"}


def test_shown_escapes_what_a_terminal_or_yaml_would_act_on() -> None:
    assert shown("\x1b[2J") == "\\x1b[2J"
    assert shown("\x9b") == "\\x9b"
    assert shown("a\u202eb") == "a\\u202eb"
    assert shown("\ud800") == "\\ud800"
    assert shown("\U000e0041") == "\\U000e0041"
    assert shown("plain text, é ü 中文 ✓") == "plain text, é ü 中文 ✓"
    for name, text in NASTY.items():
        out = shown(text)
        assert not _bad_characters(out), name
        assert out.isprintable() and "\n" not in out, name
        out.encode("utf-8")  # always encodable
        yaml.safe_load(yaml.safe_dump(out))  # and YAML reads it


def memcg_fix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, cwd=cwd, env=ansible_env(), timeout=300, check=False,
                          errors="surrogateescape")


def nasty_facts() -> dict[str, Any]:
    """An EL7 host per string, planned for nokmem and more, the string in every
    field a report or the playbook's header quotes; and an unreachable host
    per string whose error is the string."""
    hosts = []
    for index, text in enumerate(NASTY.values()):
        host = copy.deepcopy(BASES["el7"])
        host["host"] = f"h{index:02d}-{text}"
        facts = host["facts"]
        facts["kernel"].update({"release": text, "package_version": "3.10.0-693.el7",
                                "nokmem_supported": False})
        facts["kmem"].update({"accounting_active": True, "nokmem_honoured": False})
        facts["cmdline"].update({"nokmem": False, "raw": text})
        facts["boot"]["nokmem_all_entries"] = False
        facts["kernel_log"]["signatures"]["kmem_cache_close"] = {
            "count": 1, "last": text, "caches": [text]}
        facts["kernel_log"]["signatures"]["memcg_oom"] = {"count": 1, "last": text,
                                                         "memcgs": [text]}
        host["unknown"] = [{"fact": "runc.version", "reason": text}]
        hosts.append(host)
        hosts.append({"host": f"unreachable-{index:02d}{text}", "facts": {}, "unknown": [],
                      "error": text})
    return {"schema_version": 1, "memcg_fix_version": "0.1.0", "hosts": hosts}


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("nasty")
    facts = tmp / "facts.json"
    facts.write_text(json.dumps(nasty_facts()))  # ASCII: every nasty character escaped
    out: dict[str, Any] = {"dir": tmp}
    for fmt in ("table", "markdown", "json"):
        run = memcg_fix("plan", "--facts", str(facts), "--format", fmt, "--explain", cwd=tmp)
        assert run.returncode == 2, run.stderr
        out[fmt] = run
    (tmp / "plan.json").write_text(out["json"].stdout)
    playbook = tmp / "memcg-fix.yml"
    out["render"] = memcg_fix("render", "--plan", str(tmp / "plan.json"), "--out", str(playbook),
                              cwd=tmp)
    assert out["render"].returncode == 0, out["render"].stderr
    out["playbook"] = playbook
    return out


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_plan_outputs_show_every_nasty_string_escaped(planned: dict[str, Any], fmt: str) -> None:
    run = planned[fmt]
    assert not _bad_characters(run.stdout)
    assert not _bad_characters(run.stderr)
    assert len(run.stderr.splitlines()) == 1  # "N host(s) could not be planned: ..."
    if fmt != "json":
        # each string is there, escaped (Markdown adds its own backslashes and entities)
        text = html.unescape(re.sub(r"\\([\\`*_\[\]|~$#])", r"\1", run.stdout))
        for name, value in NASTY.items():
            assert shown(value) in text, name


def test_the_playbook_comments_hold_the_strings_escaped(planned: dict[str, Any]) -> None:
    text = planned["playbook"].read_text(encoding="utf-8")
    assert not _bad_characters(text)
    assert "finding" in text and shown(NASTY["c1-csi"]) in text


def test_the_playbook_passes_syntax_check_and_ansible_lint(planned: dict[str, Any]) -> None:
    playbook, tmp = planned["playbook"], planned["dir"]
    env = ansible_env()
    syntax = subprocess.run([ansible_bin("ansible-playbook"), "--syntax-check", "-i",
                             "localhost,", str(playbook)], capture_output=True, text=True,
                            env=env, cwd=tmp, timeout=300, check=False)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    lint = subprocess.run([ansible_bin("ansible-lint"), "--offline", "--profile", "production",
                           str(playbook)], capture_output=True, text=True, env=env, cwd=tmp,
                          timeout=600, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # and memcg-fix reads back its own playbook as untouched
    check = memcg_fix("apply", "-i", "localhost,", "--playbook", str(playbook), "--format",
                      "json", "--out", str(tmp / "apply-out"), cwd=tmp)
    assert "was edited" not in check.stderr and "not valid YAML" not in check.stderr


def test_detect_table_and_stderr_from_a_nasty_host_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for rel, text in {"etc/hostname": NASTY["osc-title"] + "\n",
                      "proc/sys/kernel/osrelease": NASTY["c1-csi"] + "\n",
                      "etc/os-release": f'ID="{NASTY["bidi-override"]}"\n',
                      "var/log/messages": "BUG: Objects remaining in " + NASTY["c1-csi"]
                      + " on kmem_cache_close()\n"}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    run = memcg_fix("detect", "--root", str(root), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not _bad_characters(run.stdout + run.stderr)
    assert shown(NASTY["osc-title"]) in run.stdout and shown(NASTY["c1-csi"]) in run.stdout
    named = memcg_fix("detect", "--root", str(root), "--host", NASTY["csi-clear"], cwd=tmp_path)
    assert not _bad_characters(named.stdout) and shown(NASTY["csi-clear"]) in named.stdout
    # an error naming a nasty path is one escaped line
    missing = memcg_fix("detect", "--root", str(tmp_path / NASTY["osc8-link"]), cwd=tmp_path)
    assert missing.returncode == 3
    assert not _bad_characters(missing.stderr) and len(missing.stderr.splitlines()) == 1
