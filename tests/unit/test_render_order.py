"""The canary is predictable: batches follow host names, not answer order.

The apply play's hosts come from a group that group_by fills in whatever order
hosts answer, so without ``order: sorted`` the canary is whichever host was
quickest (met on the VM fault test: a container overtook the VM listed before
it). On real hosts this is proven by tests/integration/test_vm_faults.py, whose
canary must be the host whose name sorts first.
"""

from __future__ import annotations

from pathlib import Path

from remediate import policy as policy_api
from remediate.facts import load_facts_files
from remediate.render import PlaybookLoader, RenderOptions, render

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO / "tests" / "data" / "bad" / "facts" / "good-fleet.json"


def test_batches_run_in_host_name_order_and_the_header_says_so():
    plan = policy_api.evaluate(policy_api.load_default(), load_facts_files([FACTS]))
    planned = sorted(h.host for h in plan.hosts if h.mitigations)
    assert len(planned) > 1
    text = render(plan, RenderOptions())
    select, apply = PlaybookLoader(text).get_single_data()
    assert "order" not in select  # the group is built on every host at once
    assert apply["order"] == "sorted"
    assert "# hosts run in name order: the canary is the first planned host below" in text
    # and the first host the header lists is that canary
    listed = [line.split('"')[1] for line in text.splitlines() if line.startswith('# host "')]
    assert listed and listed[0] == planned[0], listed


def test_an_undecided_hosts_long_reason_stays_within_the_lint_line_limit():
    """A host that could not be read is named with its reason in the header;
    an ssh or sudo error is long, and ansible-lint allows 160 columns."""
    from remediate.facts import HostFacts
    from remediate.policy import evaluate, load
    from remediate.render import check, render

    reason = ("unreachable: Task failed: Timeout (12s) waiting for privilege escalation prompt: "
              "sudo: a password is required; see the ssh connection's debug output for details")
    policy = Path(__file__).resolve().parents[1] / "data" / "policies" / "el-site.yaml"
    plan = evaluate(load(policy), [HostFacts(host="db-1.example.com", facts={}, error=reason)])
    text = render(plan)
    assert max(len(line) for line in text.splitlines()) <= 160
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert " ".join(f'host "db-1.example.com": undecided, because {reason}'.split()) in " ".join(
        header.split())
    assert check(text).untouched
