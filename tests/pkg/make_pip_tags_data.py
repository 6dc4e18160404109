#!/usr/bin/python3
"""Writes the wheel tag lists tests/pkg/tags_test.cc compares pkg/tags.cc with.

Run with Debian 12's own interpreter (/usr/bin/python3, pip 23.0.1 vendoring packaging 21.3), not a
pyenv or venv python: the point is Debian pip's order. Each file holds what
pip._internal.utils.compatibility_tags.get_supported() returns (the list pip installs by and
`pip debug --verbose` prints), one tag per line.

The first file is the host itself (the script refuses to write it elsewhere than CPython 3.11 on
x86_64 with glibc 2.36). The others are targets this host is not; for them the glibc/musl detection
and sysconfig.get_platform() inside pip's vendored packaging are replaced by the target's values,
which are the only host facts the Linux tag code reads.
"""
import os
import platform
import sys
import sysconfig

from pip._internal.utils import compatibility_tags
from pip._vendor.packaging import _manylinux, _musllinux

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def write(name, tags):
    with open(os.path.join(DATA, name), "w", encoding="ascii") as f:
        f.writelines(f"{t}\n" for t in tags)
    print(f"{name}: {len(tags)} tags")


def pretend(arch, glibc=None, musl=None):
    sysconfig.get_platform = lambda: f"linux-{arch}"
    _manylinux._get_glibc_version = lambda: glibc or (-1, -1)
    _musllinux._get_musl_version = lambda executable: _musllinux._MuslVersion(*musl) if musl else None


def main():
    host = (sys.implementation.name, sys.version_info[:2], platform.machine(), platform.libc_ver())
    if host != ("cpython", (3, 11), "x86_64", ("glibc", "2.36")):
        sys.exit(f"expected Debian 12's CPython 3.11 on x86_64 with glibc 2.36, got {host}")
    write("pip_supported_tags_cp311_x86_64_glibc236.txt", compatibility_tags.get_supported())

    pretend("aarch64", musl=(1, 2))
    write("pip_supported_tags_cp312_aarch64_musl12.txt", compatibility_tags.get_supported(version="312"))

    # PyPy's ABI comes from the running interpreter's SOABI, so it is given: PyPy 3.9 is "pypy39-pp73".
    pretend("x86_64", glibc=(2, 28))
    write(
        "pip_supported_tags_pp39_x86_64_glibc228.txt",
        compatibility_tags.get_supported(version="39", impl="pp", abis=["pypy39_pp73"]),
    )


if __name__ == "__main__":
    main()
