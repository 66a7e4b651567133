"""AWX/Tower: the job templates and the change-review workflow in awx/, run as AWX runs them.

For every job AWX builds a private data directory and hands it to
ansible-runner (awx/main/tasks/jobs.py in ansible/awx: build_private_data_dir,
build_project_dir, write_inventory_file, build_args, write_args_file):

* ``project/``: the project's checkout; the template's playbook path is
  relative to it;
* ``inventory/hosts``: an executable script (mode 0700) that prints the
  inventory as JSON;
* ``env/extravars``: the extra variables: the template's, the artifacts of
  the workflow nodes before it (set_stats), the workflow's survey answers;
* ``env/cmdline``: ``--check`` for a check job, ``-u USER``, ``--diff`` with
  diff mode, ``-l LIMIT``.

The export is checked against the fields AWX's import posts (awxkit's
ApiV2.import_assets: a workflow's ``related.workflow_nodes`` are created,
then linked through success/failure nodes by their natural key
(workflow_job_template, identifier); an approval node has no
unified_job_template and a ``related.create_approval_template``).

The containers test builds that around two real Debian containers: a plan
from their real facts, the playbook rendered from it at the path the
templates name, and runs the workflow's jobs in the order AWX runs them on
the success path (check, [approval], canary, [approval], rollout, verify),
handing each job the artifacts of the ones before, then the rollback
template. Nothing sets ANSIBLE_COLLECTIONS_PATH: the collection must be
found next to the playbook, as in AWX.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet

from remediate.facts import HostFacts
from remediate.policy import evaluate, load
from remediate.render import RESULTS_STAT, parse_batches, render
from remediate.resources import role_dir
from remediate.run import collect_facts

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "awx"
TEMPLATES = AWX / "job-templates.json"
EE = AWX / "execution-environment.yml"
CHECK_TEMPLATE = "memcg-fix plan (check)"
CANARY_TEMPLATE = "memcg-fix canary"
APPLY_TEMPLATE = "memcg-fix apply"
VERIFY_TEMPLATE = "memcg-fix verify"
ROLLBACK_TEMPLATE = "memcg-fix rollback"
WORKFLOW = "memcg-fix change review"
# the success path of the workflow, as AWX runs it (None: an approval node)
SUCCESS_PATH = [("check", CHECK_TEMPLATE), ("approve-canary", None), ("canary", CANARY_TEMPLATE),
                ("approve-rollout", None), ("rollout", APPLY_TEMPLATE), ("verify", VERIFY_TEMPLATE)]
SURVEY_VARIABLES = {"memcg_fix_reboot_ok", "memcg_fix_batches", "memcg_fix_force"}
# What AWX's import posts for each kind (awxkit ApiV2._import_list keeps only
# the POST fields of the endpoint; awx/api/serializers.py):
# WorkflowJobTemplateSerializer (+ name, description of UnifiedJobTemplateSerializer)
WORKFLOW_FIELDS = {"name", "description", "extra_vars", "organization", "survey_enabled",
                   "allow_simultaneous", "ask_variables_on_launch", "inventory", "limit",
                   "scm_branch", "ask_inventory_on_launch", "ask_scm_branch_on_launch",
                   "ask_limit_on_launch", "webhook_service", "webhook_credential",
                   "ask_labels_on_launch", "ask_skip_tags_on_launch", "ask_tags_on_launch",
                   "skip_tags", "job_tags"}
# WorkflowJobTemplateNodeSerializer and LaunchConfigurationBaseSerializer
NODE_FIELDS = {"workflow_job_template", "unified_job_template", "all_parents_must_converge",
               "identifier", "extra_data", "inventory", "scm_branch", "job_type", "job_tags",
               "skip_tags", "limit", "diff_mode", "verbosity", "execution_environment", "forks",
               "job_slice_count", "timeout"}
# WorkflowJobTemplateNodeCreateApprovalSerializer
APPROVAL_FIELDS = {"name", "description", "timeout"}
NODE_LINKS = ("success_nodes", "failure_nodes", "always_nodes")
# what `awx import` reads (awxkit/awxkit/api/pages/api.py, EXPORTABLE_RESOURCES)
EXPORTABLE = {"users", "organizations", "teams", "credential_types", "credentials",
              "notification_templates", "projects", "inventory", "inventory_sources",
              "job_templates", "workflow_job_templates", "execution_environments",
              "applications", "schedules"}
# AWX's survey question types (awx/api/views: JobTemplateSurveySpec.ALLOWED_TYPES)
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str,
                "multiselect": str, "integer": int, "float": float}

# A site policy for this test: pam-lastlog wherever pam_lastlog writes
# wtmp/lastlog on a Debian host (the stock Debian 12 login stack does).
POLICY = """\
id: awx-layout-test
version: "1.0.0"
description: pam-lastlog on Debian hosts whose pam_lastlog writes wtmp or lastlog.
rules:
  - id: debian-pam-lastlog
    description: >-
      pam_lastlog writes wtmp and lastlog from inside each login's session
      scope; the page cache of those writes keeps the scope's memory cgroup
      alive after logout.
    when:
      distro: [debian]
      pam_lastlog: {active: true, writes_any: true}
    findings:
      - id: pam-lastlog-writes
        severity: info
        summary: pam_lastlog writes wtmp/lastlog from session scopes
    mitigations:
      - id: pam-lastlog
        params: {method: noupdate}
"""


def job_templates() -> dict[str, dict[str, Any]]:
    doc = json.loads(TEMPLATES.read_text())
    return {jt["name"]: jt for jt in doc["job_templates"]}


def workflow() -> dict[str, Any]:
    doc = json.loads(TEMPLATES.read_text())
    (wf,) = [w for w in doc["workflow_job_templates"] if w["name"] == WORKFLOW]
    return dict(wf)


def workflow_errors(wf: dict[str, Any], templates: dict[str, dict[str, Any]]) -> list[str]:
    """What AWX's import would drop or fail to link in an exported workflow."""
    errors = [f"workflow field {f!r} is not one the import posts"
              for f in set(wf) - WORKFLOW_FIELDS - {"natural_key", "related"}]
    key = {"organization": wf.get("organization"), "name": wf.get("name"),
           "type": "workflow_job_template"}
    if wf.get("natural_key") != key:
        errors.append(f"workflow natural_key {wf.get('natural_key')!r} is not {key!r}")
    nodes = wf.get("related", {}).get("workflow_nodes") or []
    by_key = {json.dumps(n.get("natural_key"), sort_keys=True): n for n in nodes}
    identifiers = [n.get("identifier") for n in nodes]
    if len(set(identifiers)) != len(identifiers):
        errors.append("node identifiers are not unique")
    for node in nodes:
        ident = node.get("identifier")
        errors += [f"node {ident}: field {f!r} is not one the import posts"
                   for f in set(node) - NODE_FIELDS - {"natural_key", "related"}]
        if node.get("natural_key") != {"workflow_job_template": key, "identifier": ident,
                                       "type": "workflow_job_template_node"}:
            errors.append(f"node {ident}: natural_key is not (workflow_job_template, identifier)")
        related = node.get("related") or {}
        approval = related.get("create_approval_template")
        template = node.get("unified_job_template")
        if approval is None and template is None:
            errors.append(f"node {ident}: neither a job template nor an approval")
        if approval is not None:
            if template is not None:
                errors.append(f"node {ident}: an approval node runs no job template")
            errors += [f"node {ident}: approval field {f!r} is not one the import posts"
                       for f in set(approval) - APPROVAL_FIELDS]
            if not approval.get("name") or not isinstance(approval.get("timeout", 0), int):
                errors.append(f"node {ident}: an approval needs a name and an integer timeout")
        if template is not None and (template.get("type") != "job_template"
                                     or template.get("name") not in templates):
            errors.append(f"node {ident}: runs {template!r}, which is not in the export")
        for link in NODE_LINKS:
            for target in related.get(link) or []:
                if json.dumps(target, sort_keys=True) not in by_key:
                    errors.append(f"node {ident}: {link} names a node that does not exist")
    return errors


def success_path(wf: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The nodes AWX runs when every job succeeds and every approval is approved."""
    nodes = {n["identifier"]: n for n in wf["related"]["workflow_nodes"]}
    children = {t["identifier"] for n in nodes.values()
                for link in NODE_LINKS for t in n["related"][link]}
    (current,) = [i for i in nodes if i not in children]  # one root
    path = []
    while current:
        node = nodes[current]
        template = node.get("unified_job_template")
        path.append((current, template["name"] if template else None))
        nexts = [t["identifier"] for t in node["related"]["success_nodes"]]
        assert len(nexts) <= 1, f"{current} branches on success"
        current = nexts[0] if nexts else None
    return path


def survey_errors(spec: dict[str, Any]) -> list[str]:
    """What AWX's API would refuse in a survey spec (JobTemplateSurveySpec._validate_spec_data)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), kind):
            errors.append(f"survey field {field!r} missing or not a {kind.__name__}")
    seen: set[str] = set()
    for idx, item in enumerate(spec.get("spec") or ()):
        for field in ("type", "question_name", "variable", "required"):
            kind = bool if field == "required" else str
            if not isinstance(item.get(field), kind):
                errors.append(f"question {idx}: {field!r} missing or not a {kind.__name__}")
        if item.get("variable") in seen:
            errors.append(f"question {idx}: variable {item.get('variable')!r} duplicated")
        seen.add(item.get("variable"))
        qtype = item.get("type")
        if qtype not in SURVEY_TYPES:
            errors.append(f"question {idx}: type {qtype!r} unknown")
            continue
        default = item.get("default")
        if default not in (None, "") and not isinstance(default, SURVEY_TYPES[qtype]):
            errors.append(f"question {idx}: default {default!r} is not a {qtype} answer")
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append(f"question {idx}: {key} is not an integer")
        if qtype in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if not choices:
                errors.append(f"question {idx}: {qtype} without choices")
                continue
            if isinstance(choices, str):
                choices = choices.splitlines()
            defaults = default.splitlines() if isinstance(default, str) else []
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"question {idx}: a multiple choice has one default")
            if any(d not in choices for d in defaults):
                errors.append(f"question {idx}: default {default!r} is not among the choices")
    return errors


def survey_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The extra vars AWX sends when every survey question keeps its default."""
    answers: dict[str, Any] = {}
    for item in template["related"]["survey_spec"]["spec"]:
        if item.get("default") in (None, ""):
            continue
        if item["type"] == "multiselect":  # AWX hands a multiselect answer over as a list
            answers[item["variable"]] = item["default"].splitlines()
        else:
            answers[item["variable"]] = item["default"]
    return answers


# ------------------------------------------------------------------ files


def test_job_templates_are_an_awx_export_with_the_templates_the_workflow_runs():
    doc = json.loads(TEMPLATES.read_text())
    assert set(doc) <= EXPORTABLE, set(doc) - EXPORTABLE
    templates = job_templates()
    assert set(templates) == {CHECK_TEMPLATE, CANARY_TEMPLATE, APPLY_TEMPLATE, VERIFY_TEMPLATE,
                              ROLLBACK_TEMPLATE}
    modes = {name: (jt["job_type"], jt["diff_mode"], yaml.safe_load(jt["extra_vars"]) or {})
             for name, jt in templates.items()}
    assert modes == {
        CHECK_TEMPLATE: ("check", True, {}),
        CANARY_TEMPLATE: ("run", False, {"memcg_fix_stage": "canary"}),
        APPLY_TEMPLATE: ("run", False, {}),
        VERIFY_TEMPLATE: ("check", True, {"memcg_fix_stage": "verify"}),
        ROLLBACK_TEMPLATE: ("run", False, {"memcg_fix_state": "absent"}),
    }
    projects = {json.dumps(p["natural_key"], sort_keys=True): p for p in doc["projects"]}
    environments = {e["name"] for e in doc["execution_environments"]}
    for jt in templates.values():
        assert jt["natural_key"] == {"organization": {"name": "Default", "type": "organization"},
                                     "name": jt["name"], "type": "job_template"}
        # the project it runs from is in the same file, and lets a launch pick the change branch
        project = projects[json.dumps(jt["project"], sort_keys=True)]
        assert project["allow_override"] and jt["ask_scm_branch_on_launch"]
        assert jt["execution_environment"]["name"] in environments
        assert jt["ask_limit_on_launch"] is True
        assert jt["survey_enabled"] is bool(jt["related"]["survey_spec"])
        credential_types = {c["credential_type"]["kind"] for c in jt["related"]["credentials"]}
        assert credential_types == {"ssh"}


def test_the_workflow_is_an_awx_export_of_a_change_review_with_approvals():
    wf = workflow()
    assert workflow_errors(wf, job_templates()) == []
    assert success_path(wf) == SUCCESS_PATH
    nodes = {n["identifier"]: n for n in wf["related"]["workflow_nodes"]}
    # a failed canary or rollout asks a person before anything is rolled back
    for failing in ("canary", "rollout"):
        (then,) = nodes[failing]["related"]["failure_nodes"]
        approval = nodes[then["identifier"]]
        assert "create_approval_template" in approval["related"]
        (rollback,) = approval["related"]["success_nodes"]
        assert nodes[rollback["identifier"]]["unified_job_template"]["name"] == ROLLBACK_TEMPLATE
    # the survey asks for reboot consent (no by default) and the batch sizes
    spec = wf["related"]["survey_spec"]
    assert survey_errors(spec) == []
    by_var = {item["variable"]: item for item in spec["spec"]}
    assert set(by_var) == {"memcg_fix_reboot_ok", "memcg_fix_batches"}
    assert by_var["memcg_fix_reboot_ok"]["default"] == "false"
    # the change branch, the limit and the inventory are asked once, for every job
    assert wf["ask_scm_branch_on_launch"] and wf["ask_limit_on_launch"]
    assert wf["ask_inventory_on_launch"]


def test_an_export_awx_would_not_import_is_caught():
    wf = workflow()
    broken = json.loads(json.dumps(wf))
    nodes = broken["related"]["workflow_nodes"]
    nodes[0]["related"]["success_nodes"][0]["identifier"] = "nowhere"
    nodes[1]["related"]["create_approval_template"]["approvers"] = ["alice"]
    nodes[2]["unified_job_template"]["name"] = "memcg-fix deploy"
    nodes[3]["identifier"] = nodes[4]["identifier"]
    del nodes[5]["unified_job_template"]
    errors = workflow_errors(broken, job_templates())
    assert any("names a node that does not exist" in e for e in errors)
    assert any("'approvers'" in e for e in errors)
    assert any("not in the export" in e for e in errors)
    assert any("not unique" in e for e in errors)
    assert any("neither a job template nor an approval" in e for e in errors)


def test_the_playbook_path_sits_next_to_the_collection_in_the_repository():
    for jt in job_templates().values():
        playbook = Path(jt["playbook"])
        assert not playbook.is_absolute() and ".." not in playbook.parts
        # Ansible finds collections in collections/ beside the playbook: the
        # rendered playbook goes into the repository's playbooks/ folder,
        # next to the memcg_fix.remediate collection
        assert (REPO / playbook.parent).resolve() == (REPO / "playbooks").resolve()
        collection = REPO / playbook.parent / "collections/ansible_collections/memcg_fix/remediate"
        assert (collection / "roles" / "memcg_remediate" / "tasks" / "main.yml").is_file()


def test_the_survey_is_valid_for_awx_and_asks_what_the_playbook_reads(tmp_path):
    plan = evaluate(load(_write(tmp_path / "policy.yaml", POLICY)), [])
    rendered = render(plan)
    asked: set[str] = set()
    for jt in [*job_templates().values(), workflow()]:
        spec = jt["related"]["survey_spec"]
        if not jt["survey_enabled"]:
            continue
        assert survey_errors(spec) == []
        by_var = {item["variable"]: item for item in spec["spec"]}
        asked |= set(by_var)
        if "memcg_fix_reboot_ok" in by_var:  # no reboot unless asked
            assert by_var["memcg_fix_reboot_ok"]["default"] == "false"
        if "memcg_fix_batches" in by_var:
            assert by_var["memcg_fix_batches"]["type"] == "multiselect"
            # every batch size the survey offers is one the renderer accepts
            parse_batches(",".join(by_var["memcg_fix_batches"]["choices"]))
    assert asked == SURVEY_VARIABLES
    for jt in job_templates().values():  # each answer and stage reaches the playbook
        for variable in {*(yaml.safe_load(jt["extra_vars"]) or {}), *asked}:
            assert variable in rendered, variable


def test_a_survey_awx_would_refuse_is_caught():
    spec = workflow()["related"]["survey_spec"]
    broken = json.loads(json.dumps(spec))
    broken["spec"][0]["default"] = "maybe"
    broken["spec"].append(dict(broken["spec"][1]))
    errors = survey_errors(broken)
    assert any("not among the choices" in e for e in errors)
    assert any("duplicated" in e for e in errors)


def test_the_execution_environment_pins_ansible_core_2_16_and_needs_nothing_else():
    ee = yaml.safe_load(EE.read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    core = SpecifierSet(deps["ansible_core"]["package_pip"].removeprefix("ansible-core"))
    assert "2.16.19" in core and "2.17.0" not in core and "2.15.13" not in core
    assert not deps.get("galaxy") and not deps.get("python") and not deps.get("system")
    assert ee["images"]["base_image"]["name"]
    try:  # ansible-builder's own schema, where it is installed
        from ansible_builder.ee_schema import validate_schema
    except ImportError:
        pass
    else:
        validate_schema(ee)


def test_the_role_uses_only_ansible_builtin_and_its_own_modules():
    # the reason the execution environment needs no other collection
    tasks = role_dir() / "tasks"
    used: set[str] = set()
    for path in tasks.glob("*.yml"):
        _actions(yaml.safe_load(path.read_text()) or [], used)
    assert used, "no task actions found"
    foreign = {a for a in used
               if not a.startswith(("ansible.builtin.", "ansible.legacy.", "memcg_fix.remediate."))}
    assert not foreign, foreign


_TASK_KEYWORDS = {"name", "when", "loop", "loop_control", "vars", "register", "become",
                  "changed_when", "failed_when", "check_mode", "notify", "tags", "block",
                  "rescue", "always", "delegate_to", "run_once", "until", "retries", "delay",
                  "environment", "no_log", "ignore_errors", "args", "listen"}


def _actions(tasks: list[Any], out: set[str]) -> None:
    for task in tasks:
        if not isinstance(task, dict):
            continue
        for section in ("block", "rescue", "always"):
            _actions(task.get(section) or [], out)
        out.update(k for k in task if k not in _TASK_KEYWORDS and "." in k)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------ jobs, run as AWX runs them


def _private_data_dir(root: Path, targets: list[Any], playbook_text: str,
                      template: dict[str, Any], extravars: dict[str, Any]) -> Path:
    """A private data dir laid out as AWX lays out one job's."""
    root.mkdir()
    # project/: the repository checkout (what the playbook needs of it: the
    # playbooks folder with its playbook-adjacent collection)
    project = root / "project"
    shutil.copytree(REPO / "playbooks", project / "playbooks", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "output"))
    (project / template["playbook"]).write_text(playbook_text)
    # inventory/hosts: an executable script printing the inventory as JSON
    hostvars = {t.name: {k: v for k, v in t.inventory_vars.items() if k != "ansible_user"}
                for t in targets}
    script_data = {"all": {"children": ["ungrouped"]},
                   "ungrouped": {"hosts": [t.name for t in targets]},
                   "_meta": {"hostvars": hostvars}}
    hosts = root / "inventory" / "hosts"
    hosts.parent.mkdir()
    hosts.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\n"
                     f"print({json.dumps(script_data)!r})\n")
    hosts.chmod(0o700)
    # env/: extra vars and the command line AWX builds
    env = root / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump(extravars))
    args = []
    if template["job_type"] == "check":
        args.append("--check")
    args += ["-u", targets[0].user]
    if template["diff_mode"]:
        args.append("--diff")
    args += ["-l", ",".join(t.name for t in targets)]  # ask_limit_on_launch: this change's hosts
    (env / "cmdline").write_text(" ".join(args))
    (env / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }))
    (env / "settings").write_text(yaml.safe_dump({"job_timeout": 900, "idle_timeout": 600}))
    return root


def _run_job(data_dir: Path, template: dict[str, Any]) -> Any:
    import ansible_runner

    return ansible_runner.run(
        private_data_dir=str(data_dir), ident="job", playbook=template["playbook"],
        inventory=str(data_dir / "inventory" / "hosts"), quiet=True)


def _artifacts(runner: Any) -> dict[str, Any]:
    """The job's artifacts as AWX saves them: the set_stats data of its stats event."""
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return dict(event["event_data"].get("artifact_data") or {})
    raise AssertionError("the job recorded no playbook_on_stats event")


def _stdout(runner: Any) -> str:
    return str(runner.stdout.read())


def _extravars(template: dict[str, Any], artifacts: dict[str, Any],
               answers: dict[str, Any]) -> dict[str, Any]:
    """A workflow job's extra vars: the template's own, the artifacts of the
    jobs before it, the workflow's survey answers (the later wins)."""
    return {**(yaml.safe_load(template["extra_vars"]) or {}), **artifacts, **answers}


def test_the_workflow_runs_check_canary_rollout_verify_from_awx_private_data_dirs(
        target_factory, inventory_path, tmp_path, monkeypatch):
    for var in ("ANSIBLE_ROLES_PATH", "ANSIBLE_CONFIG", "ANSIBLE_LIBRARY",
                "ANSIBLE_COLLECTIONS_PATH"):
        monkeypatch.delenv(var, raising=False)
    # ansible-runner runs the ansible-playbook it finds on PATH: this
    # interpreter's (the 2.16 tier runs 2.16, the core of the EE)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    targets = sorted(target_factory("debian", 2), key=lambda t: t.name)
    canary, other = targets
    logins_before = {t.name: t.read_file("/etc/pam.d/login") for t in targets}

    # facts -> plan -> playbook, from the containers' real facts
    facts, report = collect_facts([str(inventory_path(targets))], data_dir=tmp_path / "facts")
    assert report.rc == 0 and [f.host for f in facts] == [t.name for t in targets]
    assert all(isinstance(f, HostFacts) and f.error is None for f in facts)
    plan = evaluate(load(_write(tmp_path / "policy.yaml", POLICY)), facts)
    assert [[m.id for m in h.mitigations] for h in plan.hosts] == [["pam-lastlog"]] * 2
    playbook = render(plan)

    templates = job_templates()
    answers = survey_defaults(workflow())
    assert answers["memcg_fix_batches"] == ["1", "10%", "25%"]  # a list, as AWX sends it
    watched = ("/etc", "/var/lib/memcg-fix", "/usr/local/sbin")
    artifacts: dict[str, Any] = {}
    jobs: dict[str, Any] = {}
    for identifier, name in success_path(workflow()):
        if name is None:
            continue  # an approval node: the reviewer approves (see awx/README.md)
        template = templates[name]
        before = {t.name: t.tree_checksums(watched, metadata=True) for t in targets}
        data_dir = _private_data_dir(tmp_path / identifier, targets, playbook, template,
                                     _extravars(template, artifacts, answers))
        job = jobs[identifier] = _run_job(data_dir, template)
        assert job.status == "successful", (identifier, _stdout(job)[-4000:])
        after = {t.name: t.tree_checksums(watched, metadata=True) for t in targets}
        results = _artifacts(job)[RESULTS_STAT]
        if identifier == "check":
            # the diff a reviewer approves; no byte changed on any host
            assert "+session    optional   pam_lastlog.so noupdate" in _stdout(job)
            assert after == before
            assert {h: r["changed"] for h, r in results.items()} == {
                canary.name: ["pam-lastlog"], other.name: ["pam-lastlog"]}
        elif identifier == "canary":
            # the canary alone changed, and verified from fresh facts
            assert set(results) == {canary.name}
            assert results[canary.name]["changed"] == ["pam-lastlog"]
            assert results[canary.name]["verified"] is True
            assert after[other.name] == before[other.name]
            assert after[canary.name] != before[canary.name]
        elif identifier == "rollout":
            # every planned host; the canary, already done, changes nothing
            assert results[canary.name]["changed"] == []
            assert results[other.name]["changed"] == ["pam-lastlog"]
            assert all(r["verified"] for r in results.values())
        elif identifier == "verify":
            assert after == before
            assert all(r["changed"] == [] and r["check_mode"] for r in results.values())
        # AWX hands each job's artifacts to the nodes after it
        artifacts = {**artifacts, **_artifacts(job)}
    assert list(jobs) == ["check", "canary", "rollout", "verify"]
    for t in targets:
        login = t.read_file("/etc/pam.d/login").decode()
        active = [line for line in login.splitlines()
                  if "pam_lastlog.so" in line and not line.lstrip().startswith("#")]
        assert active and all("noupdate" in line.split() for line in active), active

    # the rollback template puts every file back byte for byte
    template = templates[ROLLBACK_TEMPLATE]
    job = _run_job(_private_data_dir(tmp_path / "rollback", targets, playbook, template,
                                     _extravars(template, {}, survey_defaults(template))),
                   template)
    assert job.status == "successful", _stdout(job)[-4000:]
    assert {r["state"] for r in _artifacts(job)[RESULTS_STAT].values()} == {"absent"}
    for t in targets:
        assert t.read_file("/etc/pam.d/login") == logins_before[t.name]

    # once rolled back, the verify job fails every host (all in one batch): the
    # plan is not in effect
    template = templates[VERIFY_TEMPLATE]
    job = _run_job(_private_data_dir(tmp_path / "verify-again", targets, playbook, template,
                                     _extravars(template, artifacts, answers)), template)
    assert job.status == "failed"
    assert "would still change pam-lastlog" in _stdout(job)
    assert all(job.stats["failures"].get(t.name) for t in targets)
