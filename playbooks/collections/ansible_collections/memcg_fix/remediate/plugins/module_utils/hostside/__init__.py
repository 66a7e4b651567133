"""Host-side code of memcg-fix: parsers and collectors that run on the target.

This package is shared by ``memcg-fix detect`` (controller, Python 3.10+) and
by the role's Ansible modules, which import it as
``ansible.module_utils.memcg_fix_host`` and run it on the target's own
Python (2.7 or 3.6+). Hence the rules for every module in here:

* standard library only;
* no f-strings, no annotations, no ``pathlib``; newer APIs are guarded;
* relative imports only (the package name differs between the two users);
* nothing prints, exits or raises out of a collector: a source that cannot be
  read becomes an "unknown" with a reason.
"""
