"""memcg-fix: find, plan, apply and verify fixes for leaking memory cgroups.

Data flows one way: facts -> decisions (Plan) -> playbook -> run -> report.
Only :mod:`remediate.cli` prints or exits; everything else returns values or
raises :class:`remediate.errors.RemediateError`.
"""

__version__ = "0.1.0"
