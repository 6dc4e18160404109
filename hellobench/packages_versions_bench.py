#!/usr/bin/env python3
"""HelloBench packages, second versions (issue 15): the cache bytes a second version of a dist adds, as a
share of the first version's.

    python3 hellobench/packages_versions_bench.py --lazyfs build/tools/lazyfs [--packages requests,django,numpy]

Debian 12 has one version of each package, so the second version is made from the first the way a patch
release looks: the same wheel with its version bumped (`X.post1`: a new .dist-info, METADATA and
RECORD) and one line added to the package's `__init__.py`. Both are served by a local index (nginx on
127.0.0.1), made into package layers with .pyc compiled by the image's python3 (Debian's python3 image,
as HelloBench packages uses), and mounted one after the other on one cache with every file read. The
figure is the chunk bytes the second mount added (`lazyfs cache stats`) over those the first added:
identical files are the same chunks, so only the changed files, their .pyc and the dist-info should be
new. Prints a table; asserts nothing.
"""

import argparse
import hashlib
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import debian_image  # noqa: E402
from debian_wheels import debian_wheels  # noqa: E402
from package_index import NginxIndex, PackageIndex  # noqa: E402

DEBS = {"requests": "python3-requests", "django": "python3-django", "numpy": "python3-numpy"}


def run(cmd, timeout=1800):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])}… exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def bump(wheel_path, out_dir, package):
    """The wheel as version X.post1 with one line added to PACKAGE/__init__.py; (path, metadata)."""
    with zipfile.ZipFile(wheel_path) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist() if not i.filename.endswith("/")]
    info = next(n.split("/")[0] for n, _ in members if n.endswith(".dist-info/METADATA"))
    dist, version = info[: -len(".dist-info")].rsplit("-", 1)
    new_version = version + ".post1"
    new_info = f"{dist}-{new_version}.dist-info"
    out = []
    for name, data in members:
        if name.endswith("/RECORD"):
            continue
        if name.startswith(info + "/"):
            name = new_info + name[len(info):]
            if name.endswith("/METADATA"):
                data = re.sub(rb"^Version: .*$", b"Version: " + new_version.encode(), data, count=1, flags=re.M)
        if name == f"{package}/__init__.py":
            data += b"\n# a patch release\n"
        out.append((name, data))
    record = "".join(f"{n},{record_hash(d)},{len(d)}\n" for n, d in out) + f"{new_info}/RECORD,,\n"
    out.append((f"{new_info}/RECORD", record.encode()))
    path = os.path.join(out_dir, os.path.basename(wheel_path).replace(f"-{version}-", f"-{new_version}-"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in out:
            z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), d, zipfile.ZIP_DEFLATED)
    metadata = next(d for n, d in out if n.endswith("/METADATA"))
    return path, metadata, new_version


def read_all(root):
    total = 0
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    total += len(f.read())
    return total


def chunk_bytes(lazyfs, cache):
    return json.loads(run([lazyfs, "cache", "stats", "--json", "--cache-dir", cache]).stdout)["chunk_bytes"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--packages", default="requests,django,numpy")
    args = ap.parse_args()
    lazyfs = os.path.abspath(args.lazyfs)
    names = args.packages.split(",")
    layout, tag = debian_image.build_image("hellobench-python-pip", ["python3", "python3-pip"],
                                           {"Cmd": ["python3"], "Env": debian_image.DEFAULT_ENV}, lazyfs=lazyfs)
    image = f"oci:{layout}:{tag}"
    wheels = debian_wheels([DEBS[n] for n in names])
    work = tempfile.mkdtemp(prefix="hellobench-versions-")
    rows = []
    try:
        index = PackageIndex(os.path.join(work, "index"))
        for name in names:
            w = next(w for w in wheels if w.name.lower() == name)
            index.add_wheel_file(w.path, w.name, w.metadata, w.requires_python)
            path, metadata, new_version = bump(w.path, os.path.join(work, "index", "files"), name)
            index.add_wheel_file(path, w.name, metadata, w.requires_python)
            rows.append({"package": name, "v1": w.version, "v2": new_version})
        index.write()
        with NginxIndex(index.root) as server:
            for r in rows:
                cache = os.path.join(work, r["package"] + "-cache")
                added = []
                for version in (r["v1"], r["v2"]):
                    lock = os.path.join(work, f"{r['package']}-{version}.lock")
                    run([lazyfs, "pkg", "resolve", "-q", "--index-url", server.index_url("html"), "--python-version",
                         "3.11.2", "--cache-dir", cache, "-o", lock, f"{r['package']}=={version}"])
                    run([lazyfs, "pkg", "install", "-q", lock, "--cache-dir", cache, "--compile-in", image])
                    mnt = os.path.join(work, f"mnt-{r['package']}-{version}")
                    os.makedirs(mnt)
                    before = chunk_bytes(lazyfs, cache)
                    run([lazyfs, "mount", "--packages", lock, "--cache-dir", cache, "--log-file",
                         os.path.join(work, "mount.log"), mnt])
                    try:
                        read = read_all(os.path.join(mnt, "packages", f"{r['package']}=={version}", "files"))
                    finally:
                        run([lazyfs, "umount", mnt])
                    added.append((chunk_bytes(lazyfs, cache) - before, read))
                r["first_added"], r["first_read"] = added[0]
                r["second_added"], r["second_read"] = added[1]
                r["share"] = r["second_added"] / r["first_added"] if r["first_added"] else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| package | v1 -> v2 | v1 files read MB | v1 cache added MB | v2 cache added KB | v2 / v1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['package']} | {r['v1']} -> {r['v2']} | {r['first_read'] / 1e6:.1f} | {r['first_added'] / 1e6:.2f} | "
              f"{r['second_added'] / 1e3:.1f} | {100 * r['share']:.2f}% |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
