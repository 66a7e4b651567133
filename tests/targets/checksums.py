"""Print {path: sha256} for every file, symlink (and, with metadata, directory)
below the given trees, as JSON. Runs on test targets (pytest's Target and
molecule's check_mode scenario) for "a --check run changes no byte" checks.

    python3 checksums.py METADATA(0|1) PATH...

Symlinks hash their target; with METADATA=1, mode, uid and gid are folded in.
"""

import hashlib
import json
import os
import stat
import sys


def digest_of(path, st, metadata):
    if stat.S_ISLNK(st.st_mode):
        digest = hashlib.sha256(b"symlink:" + os.readlink(path).encode())
    elif stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    elif stat.S_ISDIR(st.st_mode) and metadata:
        digest = hashlib.sha256(b"dir")
    else:
        return None
    if metadata:
        # str.format, not an f-string: this file also runs on old target Pythons
        digest.update("|{:o}|{}|{}".format(  # noqa: UP032
            stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid).encode())
    return digest.hexdigest()


# Not content: the shared-memory index sqlite keeps beside the rpm database
# (EL9's backend, and Debian's rpm on the EL test images). Every reader of the
# database rewrites it, `rpm -q` and a read-only facts run included.
VOLATILE = ("/var/lib/rpm/rpmdb.sqlite-shm",)


def checksums(tops, metadata):
    out = {}
    for top in tops:
        if not os.path.lexists(top):
            continue
        paths = [top]
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            paths += [os.path.join(dirpath, name) for name in sorted(dirnames + filenames)]
        for path in paths:
            if path in VOLATILE:
                continue
            value = digest_of(path, os.lstat(path), metadata)
            if value is not None:
                out[path] = value
    return out


if __name__ == "__main__":
    print(json.dumps(checksums(sys.argv[2:], sys.argv[1] == "1"), sort_keys=True))
