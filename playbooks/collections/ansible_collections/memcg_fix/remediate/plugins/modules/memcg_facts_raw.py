#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Documentation only: the action plugin of the same name does the work.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_facts_raw
short_description: Collect the memcg facts of a host in one round trip (read-only)
description:
  - Returns exactly what M(memcg_fix.remediate.memcg_facts) returns, from the same collector code,
    without Ansible's per-module cost (no AnsiballZ, no C(ansible.module_utils.basic) on the host).
  - One shell command per host, run by the connection like M(ansible.builtin.raw), so become and every
    connection plugin work as for a module. It carries the collector (C(module_utils/hostside)),
    zlib-compressed, and runs it from memory with the host's own Python (2.7 or 3.6+). The only
    things it writes on the host are the compiled collector and the C(--version) texts of runc,
    docker and kubelet, in O(code_cache), so that later runs need not compile it again nor run
    those tools again while their binaries are the same files.
  - The Python is found as Ansible finds it - C(ansible_python_interpreter), then a
    C(discovered_interpreter_python) fact, then the first of C(INTERPRETER_PYTHON_FALLBACK) on the host
    (on ansible-core 2.16, Ansible's own discovery runs first, as for a module).
  - A host without Python, or where the command fails, fails the task with a one-line reason.
  - Changes nothing; it runs in check mode too.
options:
  root:
    description:
      - Read a host root (mounted image, chroot, extracted sosreport) instead of the live host.
        Nothing outside it is read and no command is run.
    type: str
    default: /
  code_cache:
    description:
      - Directory on the host where the compiled collector is kept, by a digest of the code sent,
        for later runs of the same code and Python (compiling is the largest part of a run on a
        small host). Made with mode 0700 if missing; used only while it and the file belong to
        the user the command runs as and nobody else can write them, else the collector is
        compiled as without a cache. Entries of older code are removed.
      - The same directory keeps C(tool-versions-1), what C(runc), C(docker) and C(kubelet --version)
        printed, each with the device, inode, size, mtime and ctime of the ELF binary that printed
        it; a later run uses a text only while its binary is that same file.
      - An empty value keeps no cache. Nothing is written in check mode.
    type: str
    default: /var/cache/memcg-fix
attributes:
  check_mode:
    support: full
    details: Reads only, and in check mode writes no code cache either.
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
- name: Collect memcg facts in one round trip
  memcg_fix.remediate.memcg_facts_raw:
  become: true
  register: memcg
"""

RETURN = r"""
schema_version:
  description: Version of the facts contract (docs/facts.md).
  returned: success
  type: int
facts:
  description: The facts, by section (kernel, cgroup, memcg, cmdline, boot...).
  returned: success
  type: dict
unknown:
  description: "Facts that could not be read: a list of {fact, reason}."
  returned: success
  type: list
"""
