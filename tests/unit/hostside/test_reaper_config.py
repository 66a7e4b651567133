"""reaper.conf has one reader: what the collector reports is what the reaper runs.

Each config is given to both real entry points: ``memcg-fix detect --root``
on a host root holding it (facts.memcg_fix), and one real ``memcg-fix-reaper``
pass whose metrics say which passes ran enabled (its host_root, state and
textfile directories are temporary: it touches nothing of this machine).
Before, the collector read ``[reclaim]`` without ``enabled`` as off while the
reaper read it as on, so a host with the reaper reclaiming was planned again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediate.cli import main as memcg_fix
from remediate.hostside import reaper

CONFIGS = {
    "reclaim section without enabled": ("[reclaim]\ngrace_seconds = 60\n", True, False),
    "empty file": ("", True, False),
    "drop_caches enabled": ("[drop_caches]\nenabled = yes\n", True, True),
    "reclaim off": ("[reclaim]\nenabled = off\n", False, False),
}


def _host_root(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "host"
    (root / "etc/memcg-fix").mkdir(parents=True)
    (root / "etc/memcg-fix/reaper.conf").write_text(text)
    (root / "usr/local/sbin").mkdir(parents=True)
    (root / "usr/local/sbin/memcg-fix-reaper").write_text("#!/bin/sh\n")
    return root


def _collected(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, object]:
    assert memcg_fix(["detect", "--root", str(root), "--format", "json"]) in (0, 3)
    [host] = json.loads(capsys.readouterr().out)["hosts"]
    section: dict[str, object] = host["facts"]["memcg_fix"]
    return section


def _reaper_enabled(tmp_path: Path, text: str) -> tuple[int, dict[str, bool]]:
    """Run one real pass with ``text`` plus private directories; read its metrics."""
    private = (
        "\n[reaper]\nhost_root = {root}\nstate_dir = {state}\ntextfile_dir = {metrics}\n".format(
            root=tmp_path / "empty-root", state=tmp_path / "state", metrics=tmp_path / "metrics")
    )
    for name in ("empty-root", "metrics"):
        (tmp_path / name).mkdir(exist_ok=True)
    conf = tmp_path / "reaper.conf"
    conf.write_text(text + private)
    code = reaper.main(["--config", str(conf)])
    enabled = {}
    prom = tmp_path / "metrics" / "memcg_fix.prom"
    for line in prom.read_text().splitlines() if prom.exists() else ():
        if line.startswith("memcg_fix_reaper_enabled{"):
            action = line.split('action="', 1)[1].split('"', 1)[0]
            enabled[action] = line.rsplit(" ", 1)[1] == "1"
    return code, enabled


@pytest.mark.parametrize(("text", "reclaim", "drop"), CONFIGS.values(), ids=list(CONFIGS))
def test_the_collector_reports_what_the_reaper_runs(capsys, tmp_path, text, reclaim, drop):
    facts = _collected(capsys, _host_root(tmp_path, text))
    code, enabled = _reaper_enabled(tmp_path, text)
    assert code in (0, 1)  # 1: the empty host root has no dying count to read
    assert enabled == {"reclaim": reclaim, "drop_caches": drop}
    assert (facts["reaper_reclaim"], facts["reaper_drop_caches"]) == (reclaim, drop)
    assert facts["reaper_config_error"] is None


def test_a_config_the_reaper_refuses_runs_no_pass(capsys, tmp_path):
    text = "[reclaim]\nenabled = maybe\n"
    facts = _collected(capsys, _host_root(tmp_path, text))
    code, enabled = _reaper_enabled(tmp_path, text)
    assert code == reaper.EXIT_USAGE and enabled == {}
    assert "is not a boolean" in capsys.readouterr().err
    assert facts["reaper_reclaim"] is False and facts["reaper_drop_caches"] is False
    assert "'maybe' is not a boolean" in str(facts["reaper_config_error"])
