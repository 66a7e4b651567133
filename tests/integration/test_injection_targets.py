"""Facts are data on real targets: hostile host files and host names run nothing.

A Debian and an EL7 container get the adversarial strings of
tests/data/injection/strings.txt (with a marker name unique to the run) in
the files memcg-fix reads: /etc/default/grub (comments, a single-quoted
GRUB_CMDLINE_LINUX, a double-quoted GRUB_CMDLINE_LINUX_DEFAULT with command
substitutions), the PAM file with the pam_lastlog line (comments and
arguments of that very line) and /etc/os-release (NAME, PRETTY_NAME). Their
inventory aliases are hostile too (shell metacharacters, a YAML tag and
anchor), and the inventory holds one more host, unreachable, with a hostile
name: one bad host among good ones.

Then the real command line runs: detect -i, plan -i (facts, plan, playbook
and the real --check --diff), apply and rollback. After each step no marker
file exists on the controller or on either target; the facts carry the
strings as data; the playbook loads back to the plan; the good hosts are
planned, applied, verified and rolled back byte for byte while the
unreachable one is reported. An inventory whose host name is a Jinja
template is refused before Ansible runs anything (ansible-core 2.16 would
evaluate it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from remediate import render as render_mod
from tests.injection_corpus import injection_strings
from tests.targets.ansible import ansible_env

pytestmark = pytest.mark.containers

REPO = Path(__file__).resolve().parents[2]
WATCHED = ("/etc", "/boot", "/usr/local/sbin")


PAM_SITE_POLICY = Path(__file__).resolve().parents[1] / "data" / "policies" / "pam-site.yaml"


def memcg_fix(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # the fleet tests plan with a site policy (tests/data/policies/pam-site.yaml)
    if args and args[0] in ("plan", "apply") and "--policy" not in args:
        args = (*args, "--policy", str(PAM_SITE_POLICY))
    # a generous connection and become timeout: on a loaded test machine sudo
    # can take longer than Ansible's default 10 s to prompt
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout,
                          env=ansible_env({"ANSIBLE_TIMEOUT": "60"}), check=False)


def markers_found(marker: str, targets) -> list[str]:
    found = [str(p) for p in Path("/tmp").glob(marker + "*")]
    for target in targets:
        out = target.run(["sh", "-c", f"ls -d /tmp/{marker}* / 2>/dev/null"]).stdout.decode()
        found += [f"{target.name}:{line}" for line in out.split() if marker in line]
    return found


def _os_release_value(text: str) -> str:
    # os-release(5): a double-quoted value, with \ " $ ` escaped
    escaped = "".join("\\" + ch if ch in '\\"$`' else ch for ch in text)
    return f'"{escaped}"'


def plant(target, strings: list[tuple[str, str]], marker: str, pam_file: str) -> dict[str, str]:
    """Write the strings into the target's grub, PAM and os-release files;
    returns what the facts must then say."""
    single = [t for _n, t in strings if "\n" not in t]
    quoted = " ".join(t.replace("'", '"') for t in single)
    grub = target.read_file("/etc/default/grub").decode()
    grub += "".join(f"# {t}\n" for t in single)
    grub += f"GRUB_CMDLINE_LINUX='{quoted}'\n"
    grub += (f'GRUB_CMDLINE_LINUX_DEFAULT="quiet $(touch /tmp/{marker}) '
             f'`touch /tmp/{marker}`"\n')
    target.write_file("/etc/default/grub", grub)
    pam = target.read_file(pam_file).decode()
    hostile_args = (f'{{{{lookup("pipe","touch${{IFS}}/tmp/{marker}")}}}} '
                    f"$(touch${{IFS}}/tmp/{marker}) ;touch${{IFS}}/tmp/{marker}")
    lines = []
    for line in pam.splitlines():
        if "pam_lastlog.so" in line and not line.lstrip().startswith("#"):
            line = line + " " + hostile_args
        lines.append(line)
    comments = "".join(f"# {t}\n" for t in single)
    target.write_file(pam_file, comments + "\n".join(lines) + "\n")
    name = " ".join(t for t in single if '"' not in t and "\\" not in t)[:400]
    pretty = single[0]
    release = target.read_file("/etc/os-release").decode()
    release = re.sub(r"^NAME=.*$", "NAME=" + _os_release_value(name), release, flags=re.M)
    release = re.sub(r"^PRETTY_NAME=.*$", "PRETTY_NAME=" + _os_release_value(pretty), release,
                     flags=re.M)
    target.write_file("/etc/os-release", release)
    # a value holding "$(" or a backtick is kept as written, quotes included:
    # the facts parser never runs (or guesses at) a command substitution
    assert "$(" in quoted
    return {"name": name, "pretty_name": pretty, "GRUB_CMDLINE_LINUX": f"'{quoted}'"}


@pytest.fixture
def hostile_fleet(debian_target, el7_target, tmp_path):
    marker = f"memcg-fix-pwned-{uuid.uuid4().hex[:12]}"
    strings = injection_strings(marker)
    targets = {"debian": debian_target, "el7": el7_target}
    expected = {
        "debian": plant(debian_target, strings, marker, "/etc/pam.d/login"),
        "el7": plant(el7_target, strings, marker, "/etc/pam.d/postlogin-ac"),
    }
    aliases = {
        "debian": f"deb $(touch /tmp/{marker}) `touch /tmp/{marker}`; touch /tmp/{marker}",
        # no brackets: Ansible reads "[...]" in a host name as a range (web[1:3])
        "el7": f'!!python/object/apply:os.system "touch /tmp/{marker}" &a *a',
    }
    unreachable = f"gone | touch /tmp/{marker} && echo"
    hosts = {aliases[kind]: dict(targets[kind].inventory_vars) for kind in targets}
    hosts[unreachable] = {"ansible_host": "127.0.0.1", "ansible_port": 1,
                          "ansible_user": "tester", "ansible_connection": "ssh"}
    inventory = tmp_path / "hostile.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"targets": {"hosts": hosts}}}}))
    return {"marker": marker, "strings": strings, "targets": targets, "expected": expected,
            "aliases": aliases, "unreachable": unreachable, "inventory": inventory}


def test_hostile_host_files_and_names_run_nothing_through_plan_apply_and_rollback(
        hostile_fleet, tmp_path):
    fleet = hostile_fleet
    marker, targets, aliases = fleet["marker"], fleet["targets"], fleet["aliases"]
    inventory = str(fleet["inventory"])
    every = list(targets.values())
    before = {k: t.tree_checksums(WATCHED) for k, t in targets.items()}

    detected = memcg_fix("detect", "-i", inventory, "--format", "json", cwd=tmp_path)
    assert detected.returncode == 0, detected.stderr
    assert not markers_found(marker, every)
    hosts = {h["host"]: h for h in json.loads(detected.stdout)["hosts"]}
    assert set(hosts) == {*aliases.values(), fleet["unreachable"]}
    assert hosts[fleet["unreachable"]]["error"].startswith("unreachable")
    for kind, alias in aliases.items():
        assert not hosts[alias].get("error") and "distro" in hosts[alias]["facts"], (
            kind, hosts[alias])
        facts = hosts[alias]["facts"]
        want = fleet["expected"][kind]
        assert facts["distro"]["name"] == want["name"]
        assert facts["distro"]["pretty_name"] == want["pretty_name"]
        assert facts["boot"]["default_grub"]["GRUB_CMDLINE_LINUX"] == want["GRUB_CMDLINE_LINUX"]
        assert "touch" in facts["boot"]["default_grub"]["GRUB_CMDLINE_LINUX_DEFAULT"]
        assert facts["pam"]["lastlog_active"] is True
        assert facts["pam"]["lastlog_writes_wtmp"] is True

    out = tmp_path / "plan"
    planned = memcg_fix("plan", "-i", inventory, "--out", str(out), "--format", "markdown",
                        cwd=tmp_path)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "Traceback" not in planned.stderr
    assert not markers_found(marker, every)
    plan = json.loads((out / "plan.json").read_text())
    status = {h["host"]: h for h in plan["hosts"]}
    assert status[fleet["unreachable"]]["status"] == "undecided"
    for alias in aliases.values():
        assert [m["id"] for m in status[alias]["mitigations"]] == ["pam-lastlog"]
    # the playbook loads back to exactly the plan's decisions
    text = (out / "memcg-fix.yml").read_text()
    assert render_mod.check(text).untouched
    plays = yaml.load(text, Loader=render_mod.PlaybookLoader)
    assert plays[1]["vars"]["memcg_fix_plan"] == {
        h["host"]: [{"id": m["id"], "params": m["params"]} for m in h["mitigations"]]
        for h in plan["hosts"]}
    # the Markdown report (and its dry run section) shows them as text
    html = MarkdownIt("commonmark").enable("table").render(planned.stdout)
    assert not re.search(r"<(a|img|code|script|pre)\b", html.split("Dry run")[0])

    applied = memcg_fix("apply", "-i", inventory, "--playbook", str(out / "memcg-fix.yml"),
                        "--out", str(tmp_path / "apply"), "--format", "json", cwd=tmp_path)
    assert not markers_found(marker, every)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    rows = {h["host"]: h for h in json.loads(applied.stdout)["hosts"]}
    assert {h: rows[h]["outcome"] for h in aliases.values()} == {
        h: "verified" for h in aliases.values()}
    login = targets["debian"].read_file("/etc/pam.d/login").decode()
    edited = [line for line in login.splitlines()
              if "pam_lastlog.so" in line and not line.startswith("#")]
    assert edited and all("noupdate" in line.split() for line in edited)
    assert all(f"$(touch${{IFS}}/tmp/{marker})" in line for line in edited)  # kept, as text

    rolled = memcg_fix("rollback", "-i", inventory, "--playbook", str(out / "memcg-fix.yml"),
                       "--out", str(tmp_path / "rollback"), cwd=tmp_path)
    assert not markers_found(marker, every)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    for kind, target in targets.items():
        after = target.tree_checksums(WATCHED)
        changed = [p for p in set(before[kind]) | set(after)
                   if before[kind].get(p) != after.get(p)]
        assert not changed, (kind, changed)


def test_an_inventory_host_named_as_a_template_is_refused_before_ansible_runs(
        debian_target, tmp_path):
    marker = f"memcg-fix-pwned-{uuid.uuid4().hex[:12]}"
    templated = f"{{{{ lookup('pipe', 'touch /tmp/{marker}') }}}}"
    hosts = {"good": dict(debian_target.inventory_vars),
             templated: dict(debian_target.inventory_vars)}
    inventory = tmp_path / "templated.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    for verb in (["detect", "-i", str(inventory)], ["plan", "-i", str(inventory)]):
        run = memcg_fix(*verb, cwd=tmp_path)
        assert run.returncode == 3, run.stdout + run.stderr
        [line] = run.stderr.splitlines()
        assert "would evaluate as templates" in line and "lookup('pipe'" in line
    assert not markers_found(marker, [debian_target])
