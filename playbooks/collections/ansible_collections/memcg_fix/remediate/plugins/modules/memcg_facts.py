#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_facts
short_description: Collect the memcg facts of a host (read-only)
description:
  - Reads everything memcg-fix decides on - kernel build, cgroup mode and where the memory
    controller lives, live and dying memory cgroups, kernel command line and boot entries,
    kmem accounting, installed kernels, runc and kubelet versions, PAM pam_lastlog lines,
    kernel-log signatures and the memory cost of zombie memcgs.
  - Runs the very parsers C(memcg-fix detect) runs (this collection's module_utils C(hostside) is
    the package C(remediate.hostside)), so the facts are the same whichever way they were read.
  - Changes nothing. Commands it may run are read-only (C(grubby --info=ALL), C(rpm -qa),
    C(runc --version), C(kubelet --version), C(dmesg)), each with a timeout.
  - A fact that cannot be read is null and listed in I(unknown) with the reason.
options:
  root:
    description:
      - Read a host root (mounted image, chroot, extracted sosreport) instead of the live host.
        Nothing outside it is read and no command is run.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
"""

EXAMPLES = r"""
- name: Collect memcg facts
  memcg_fix.remediate.memcg_facts:
  register: memcg
"""

RETURN = r"""
schema_version:
  description: Version of the facts contract (docs/facts.md).
  returned: always
  type: int
facts:
  description: The facts, by section (kernel, cgroup, memcg, cmdline, boot...).
  returned: always
  type: dict
unknown:
  description: "Facts that could not be read: a list of {fact, reason}."
  returned: always
  type: list
  elements: dict
"""

from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.collect import (
    SCHEMA_VERSION,
    collect,
)
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.reader import (
    LiveReader,
    RootReader,
)
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import finish


def facts(root):
    """The facts of the live host (``/``) or of the host root mounted at ``root``."""
    reader = LiveReader() if root in ("/", "") else RootReader(root)
    result = collect(reader)
    return dict(changed=False, schema_version=SCHEMA_VERSION, facts=result["facts"], unknown=result["unknown"])


def main():
    module = AnsibleModule(
        argument_spec=dict(root=dict(type="path", default="/")),
        supports_check_mode=True,
    )
    finish(module, partial(facts, module.params["root"]))


if __name__ == "__main__":
    main()
