"""Served to ansible-test as its cached pip bootstrap script (get_pip_<version>.py).

ansible-test bootstraps pip into each virtualenv it creates by running a
``get-pip.py`` it downloads from its own CI file host, unless a script is
already cached at ``~/.ansible/test/cache/get_pip_<version>.py``
(ansible_test/_util/target/setup/requirements.py, ``bootstrap``). That host
is not reachable from CI, so scripts/ansible-test.sh caches this script under
those names: it installs the interpreter's bundled pip (ensurepip), then lets
that pip install the exact pip/setuptools/wheel versions ansible-test asked
for from the package index.

Runs on every Python ansible-test manages (2.7 and 3.6+): stdlib only.
"""

from __future__ import absolute_import, print_function

import subprocess
import sys

# get-pip.py options that a regular ``pip install`` does not know
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main(argv):
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
