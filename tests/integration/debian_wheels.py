#!/usr/bin/env python3
"""Real wheels from Debian's python3-* packages, for the pkg tests and the resolution benchmark: PyPI is
out of reach here, but Debian ships the same projects with their core metadata (`*.dist-info/METADATA`,
or `*.egg-info/PKG-INFO` + `requires.txt`), so each one becomes a wheel with its real files and its real
Requires-Dist.

    wheels = debian_wheels(["python3-flask", "twine"])   # [Wheel(path, name, version, metadata)]

The roots and every python3-* package they depend on (apt's closure) are downloaded with `apt-get download`
(network to a Debian mirror, first run only) and unpacked with `dpkg-deb -x`. Per dist found under
usr/lib/python3/dist-packages:
  - METADATA is the dist-info's own, or PKG-INFO with requires.txt turned into Requires-Dist lines
    (`[extra]`, `[:marker]` and `[extra:marker]` sections become PEP 508 markers);
  - the wheel holds the files the package ships there, tagged cp311-cp311-manylinux_2_36_x86_64 when it
    has compiled extensions (Debian 12's glibc), py3-none-any otherwise.
Cached under $LAZYFS_TEST_CACHE/debian-wheels/<key of the roots and this builder's version>.

CLI:  python3 debian_wheels.py ROOT...   (prints the wheels)
"""

import base64
import dataclasses
import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagebuilder  # noqa: E402

DEBIAN_WHEELS_VERSION = 1
DIST_PACKAGES = "usr/lib/python3/dist-packages"
NATIVE_TAG = "cp311-cp311-manylinux_2_36_x86_64"
NOT_DISTS = re.compile(r"^python3(\.\d+)?(-(minimal|distutils|lib2to3|all|dev|venv|pip-whl|setuptools-whl))?$")


# The Debian packages the pkg tests and the resolution benchmark build wheels from, and ten real
# requirement sets over them (what an app of that kind asks for). Debian trims some Requires-Dist (its
# requests, flask and matplotlib declare none of their core dependencies), so the sets combine projects.
DEBIAN_ROOTS = [
    "twine", "pylint", "black", "python3-flake8", "python3-isort", "python3-sphinx", "python3-sphinx-rtd-theme",
    "python3-flask", "python3-requests", "python3-gunicorn", "python3-paramiko", "python3-yaml",
    "python3-matplotlib", "python3-pandas", "python3-pytest", "python3-coverage", "python3-hypothesis",
    "python3-aiohttp", "python3-httpx", "python3-keyring", "python3-rich", "python3-jsonschema",
]
CLOSURES = {
    "release": ["twine"],
    "lint": ["pylint", "flake8", "black", "isort"],
    "docs": ["sphinx", "sphinx-rtd-theme", "docutils"],
    "web": ["flask", "requests", "jinja2", "werkzeug", "itsdangerous", "click", "gunicorn"],
    "ssh": ["paramiko", "cryptography", "pyyaml"],
    "science": ["matplotlib", "pandas", "numpy"],
    "test": ["pytest", "coverage", "hypothesis"],
    "async": ["aiohttp", "httpx"],
    "secrets": ["keyring"],
    "cli": ["rich", "click", "jsonschema", "pyyaml"],
}


@dataclasses.dataclass
class Wheel:
    path: str
    name: str
    version: str
    metadata: bytes
    requires_python: str = None


def _run(cmd, cwd=None, timeout=1800):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def debian_closure(roots):
    """The roots and every python3-* package apt says they depend on (no recommends), sorted."""
    if subprocess.run(["apt-cache", "show", roots[0]], capture_output=True).returncode != 0:
        _run(["apt-get", "update", "-q"])
    out = _run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *roots])
    names = set(roots)
    for line in out.splitlines():
        if line and not line[0].isspace() and not line.startswith("<") and line.startswith("python3-"):
            names.add(line.strip())
    return sorted(n for n in names if not NOT_DISTS.match(n))


def requires_txt_to_requires_dist(text):
    """setuptools' requires.txt ("[extra:marker]" sections) as Requires-Dist values."""
    out, extra, marker = [], "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([^:\]]*)(?::(.*))?\]", line)
        if m:
            extra, marker = m.group(1).strip(), (m.group(2) or "").strip()
            continue
        conditions = []
        if marker:
            conditions.append(f"({marker})" if " or " in marker else marker)
        if extra:
            conditions.append(f'extra == "{extra}"')
        out.append(line + ("; " + " and ".join(conditions) if conditions else ""))
    return out


def _egg_metadata(pkg_info, requires_txt):
    """PKG-INFO's header with Requires-Dist (and Provides-Extra) from requires.txt, as METADATA text."""
    header = pkg_info.split("\n\n", 1)[0].rstrip("\n")
    lines = [ln for ln in header.split("\n") if not ln.startswith(("Requires-Dist:", "Metadata-Version:"))]
    requires = requires_txt_to_requires_dist(requires_txt) if requires_txt else []
    extras = sorted({m.group(1) for r in requires for m in [re.search(r'extra == "([^"]+)"', r)] if m})
    existing = {ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Provides-Extra:")}
    lines = ["Metadata-Version: 2.1"] + lines
    lines += [f"Provides-Extra: {e}" for e in extras if e not in existing]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return ("\n".join(lines) + "\n\n").encode()


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dists_in(tree):
    """(info name, METADATA bytes, [files]) for each dist an unpacked package ships."""
    site = os.path.join(tree, DIST_PACKAGES)
    if not os.path.isdir(site):
        return []
    entries = sorted(os.listdir(site))
    infos = [e for e in entries if e.endswith((".dist-info", ".egg-info"))]
    payload = []
    for top in entries:
        if top in infos or top == "__pycache__":
            continue
        path = os.path.join(site, top)
        if os.path.isdir(path) and not os.path.islink(path):
            for d, _, files in os.walk(path):
                # Debian links some data to other packages' files (jquery.js): those links dangle here.
                payload += [os.path.relpath(os.path.join(d, f), site) for f in files
                            if "__pycache__" not in d and os.path.isfile(os.path.join(d, f))]
        elif os.path.isfile(path):
            payload.append(top)
    dists = []
    for info in infos:
        path = os.path.join(site, info)
        if info.endswith(".dist-info"):
            with open(os.path.join(path, "METADATA"), "rb") as f:
                metadata = f.read()
        else:
            pkg_info = path if os.path.isfile(path) else os.path.join(path, "PKG-INFO")
            req = os.path.join(path, "requires.txt")
            with open(pkg_info, encoding="utf-8", errors="replace") as f:
                text = f.read()
            requires = open(req, encoding="utf-8").read() if os.path.isfile(req) else ""
            metadata = _egg_metadata(text, requires)
        dists.append((info, metadata, payload if len(infos) == 1 else []))
    return dists


def _write_wheel(out_dir, site, metadata, files):
    headers = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
    name, version = headers["Name"], headers["Version"]
    dist = re.sub(r"[-_.]+", "_", name)
    tag = NATIVE_TAG if any(f.endswith(".so") for f in files) else "py3-none-any"
    filename = f"{dist}-{version}-{tag}.whl"
    info = f"{dist}-{version}.dist-info"
    members = []
    for rel in files:
        with open(os.path.join(site, rel), "rb") as f:
            members.append((rel, f.read()))
    members += [(f"{info}/METADATA", metadata),
                (f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: lazyfs-tests\nRoot-Is-Purelib: "
                                  f"{'false' if tag == NATIVE_TAG else 'true'}\nTag: {tag}\n".encode())]
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in members) + f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))
    path = os.path.join(out_dir, filename)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members:
            z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), d, zipfile.ZIP_DEFLATED)
    return {"file": filename, "name": name, "version": version, "requires_python": headers["Requires-Python"]}


def _build(roots, tmp):
    packages = debian_closure(roots)
    debs = os.path.join(tmp, "debs")
    os.makedirs(debs)
    try:
        _run(["apt-get", "download", "-q", *packages], cwd=debs)
    except RuntimeError:
        _run(["apt-get", "update", "-q"])  # a machine whose package lists were cleaned
        _run(["apt-get", "download", "-q", *packages], cwd=debs)
    wheels_dir = os.path.join(tmp, "wheels")
    os.makedirs(wheels_dir)
    index = []
    for deb in sorted(os.listdir(debs)):
        tree = os.path.join(tmp, "tree", deb)
        os.makedirs(tree)
        _run(["dpkg-deb", "-x", os.path.join(debs, deb), tree])
        for _, metadata, files in _dists_in(tree):
            entry = _write_wheel(wheels_dir, os.path.join(tree, DIST_PACKAGES), metadata, files)
            entry["deb"] = deb
            index.append(entry)
    with open(os.path.join(tmp, "wheels.json"), "w") as f:
        json.dump(index, f, indent=1)
    subprocess.run(["rm", "-rf", debs, os.path.join(tmp, "tree")], check=True)


def debian_wheels(roots):
    """The wheels made from `roots` and their python3-* closure (built once, then cached)."""
    roots = sorted(set(roots))
    key = hashlib.sha256(imagebuilder.canonical_json({"v": DEBIAN_WHEELS_VERSION, "roots": roots})).hexdigest()
    root = imagebuilder.cached_dir("debian-wheels", key, lambda tmp: _build(roots, tmp))
    with open(os.path.join(root, "wheels.json")) as f:
        entries = json.load(f)
    out = []
    for e in entries:
        path = os.path.join(root, "wheels", e["file"])
        with zipfile.ZipFile(path) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = z.read(meta)
        out.append(Wheel(path, e["name"], e["version"], metadata, e["requires_python"]))
    return out


if __name__ == "__main__":
    for w in debian_wheels(sys.argv[1:]):
        print(f"{w.name} {w.version} {os.path.basename(w.path)} {os.path.getsize(w.path)}")
