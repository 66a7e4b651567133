"""Policies: load and validate YAML rules, and evaluate them into a Plan.

* ``load(path) -> Policy`` / ``load_default()``: validated against the
  shipped schema and the catalogue; raises :class:`~remediate.errors.PolicyError`
  with ``FILE:LINE: $.json.path: message``.
* ``check(path) -> (Policy | None, [problems])``: every problem, for
  ``memcg-fix policy validate``.
* ``evaluate(policy, hosts) -> Plan`` and ``evaluate_host(policy, host)``:
  pure functions of facts and policy; nothing here runs a command.
"""

from .evaluate import evaluate, evaluate_host
from .loader import check, load, load_default
from .model import Policy, Rule

__all__ = ["Policy", "Rule", "check", "evaluate", "evaluate_host", "load", "load_default"]
