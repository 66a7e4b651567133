"""Real test targets for memcg-fix: podman containers (Debian and EL-layout
hosts) and a QEMU VM, reached by Ansible over ssh. See docs/testing.md.

Modules: build (images and the VM disk, cached), target (running targets and
inventories), vm (the QEMU runner), ansible (ansible-playbook runs), common.
"""
