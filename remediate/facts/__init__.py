"""Facts: collect (local, host root, Ansible) and load (facts files).

Public API (implemented in this package):

* ``collect_local(host=None) -> HostFacts``: this machine, read live.
* ``collect_root(path, host=None) -> HostFacts``: a host root (mounted image,
  chroot or extracted sosreport); nothing outside ``path`` is read.
* ``load_facts_files(paths) -> list[HostFacts]``: JSON from
  ``memcg-fix detect --format json``, validated against the shipped schema.
"""

from .model import SCHEMA_VERSION, HostFacts, Unknown, document

__all__ = ["SCHEMA_VERSION", "HostFacts", "Unknown", "document"]
