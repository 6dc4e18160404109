"""A real local Python package index for the pkg tests: wheels made with Python's zipfile, served by nginx
on 127.0.0.1 in three flavours over the same files:

    /html/<project>/    PEP 503 HTML with PEP 658/714 metadata files (data-core-metadata="sha256=...")
    /json/<project>/    PEP 691 JSON (application/vnd.pypi.simple.v1+json) with core-metadata hashes
    /nometa/<project>/  PEP 503 HTML without metadata files: METADATA must be read out of the wheel
    /files/...          the wheels, sdists and .metadata files (nginx answers Range requests and ETags)

    index = PackageIndex(tmpdir)
    index.add_wheel("six", "1.16.0", requires=["foo>=1; extra == 'x'"])
    with NginxIndex(index.root) as server:
        server.index_url("html")    # http://127.0.0.1:PORT/html/
        server.requests()           # access log lines: (method, path, status, bytes, range)

IndexTestCase is the test class over one such index: its subclasses fill it in `fill_index(index)` (and
may change served files in `after_write(index)`); setUpClass serves it, tearDownClass stops nginx and
removes the temp dir; `resolve_lock` makes a lock with `lazyfs pkg resolve`.
"""

import base64
import hashlib
import html
import json
import os
import re
import shutil
import tempfile
import unittest
import zipfile

import harness
from nginx_harness import NginxServer


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(name, version, requires=(), requires_python=None, extras=(), summary="a test dist"):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\nThe description.\n"


class PackageIndex:
    """The files of an index; write() lays out the three flavours of pages."""

    def __init__(self, root):
        self.root = root
        self.projects = {}  # canonical name -> [file dicts]
        os.makedirs(os.path.join(root, "files"), exist_ok=True)

    def add_wheel(self, name, version, requires=(), requires_python=None, extras=(), tag="py3-none-any",
                  yanked=None, payload_bytes=0, metadata_override=None, wrong_metadata_hash=False,
                  console_scripts=None, extra_members=()):
        dist = re.sub(r"[-_.]+", "_", name)
        filename = f"{dist}-{version}-{tag}.whl"
        meta = metadata_override if metadata_override is not None else metadata_text(
            name, version, requires, requires_python, extras)
        meta_bytes = meta.encode()
        info = f"{dist}-{version}.dist-info"
        members = [(f"{dist}/__init__.py", f"VERSION = {version!r}\n".encode())]
        if payload_bytes:
            members.append((f"{dist}/payload.bin", os.urandom(payload_bytes)))  # incompressible
        members += list(extra_members)  # (name, bytes): odd or hostile members, listed in RECORD too
        if console_scripts:
            text = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in console_scripts.items())
            members.append((f"{info}/entry_points.txt", text.encode()))
        members += [(f"{info}/METADATA", meta_bytes),
                    (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: lazyfs-tests\nRoot-Is-Purelib: true\n"
                                      b"Tag: " + tag.encode() + b"\n")]
        record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in members) + f"{info}/RECORD,,\n"
        members.append((f"{info}/RECORD", record.encode()))
        path = os.path.join(self.root, "files", filename)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for n, d in members:
                z.writestr(n, d)
        with open(path + ".metadata", "wb") as f:
            f.write(meta_bytes)
        meta_hash = hashlib.sha256(b"wrong" if wrong_metadata_hash else meta_bytes).hexdigest()
        self._add(name, {"filename": filename, "sha256": _sha256_file(path), "size": os.path.getsize(path),
                         "requires_python": requires_python, "yanked": yanked, "metadata_sha256": meta_hash})
        return path

    def add_wheel_file(self, path, name, metadata, requires_python=None):
        """A wheel built elsewhere (debian_wheels.py), linked into files/ with its metadata file."""
        filename = os.path.basename(path)
        target = os.path.join(self.root, "files", filename)
        if not os.path.exists(target):
            os.symlink(os.path.abspath(path), target)
        with open(target + ".metadata", "wb") as f:
            f.write(metadata)
        self._add(name, {"filename": filename, "sha256": _sha256_file(path), "size": os.path.getsize(path),
                         "requires_python": requires_python, "yanked": None,
                         "metadata_sha256": hashlib.sha256(metadata).hexdigest()})
        return target

    def add_wheel_files(self, wheels):
        """Wheels of debian_wheels.debian_wheels() (path, name, metadata, requires_python)."""
        for w in wheels:
            self.add_wheel_file(w.path, w.name, w.metadata, w.requires_python)

    def add_site_cases(self):
        """Dists that exercise a merged site view (/packages/site): app-cli 0.3 with the console script
        app-hello (prints "hello from app-cli"); ns-a and ns-b, one PEP 420 namespace package "ns" with a
        module from each (ns.a.NAME 'a', ns.b.NAME 'b') and no ns/__init__.py; pth-dist, whose .pth names a
        directory of the site view holding hidden_mod (only site processing puts it on sys.path)."""
        self.add_wheel("app-cli", "0.3", console_scripts={"app-hello": "app_cli.main:run"},
                       extra_members=[("app_cli/main.py", b"def run():\n    print('hello from app-cli')\n    return 0\n")])
        self.add_wheel("ns-a", "1.0", extra_members=[("ns/a.py", b"NAME = 'a'\n")])
        self.add_wheel("ns-b", "1.0", extra_members=[("ns/b.py", b"NAME = 'b'\n")])
        self.add_wheel("pth-dist", "1.0", extra_members=[("pth_dist.pth", b"pth_extra\n"),
                                                         ("pth_extra/hidden_mod.py", b"FOUND = True\n")])

    def add_sdist(self, name, version):
        filename = f"{name}-{version}.tar.gz"
        path = os.path.join(self.root, "files", filename)
        with open(path, "wb") as f:
            f.write(b"not really an sdist")
        self._add(name, {"filename": filename, "sha256": _sha256_file(path), "size": os.path.getsize(path),
                         "requires_python": None, "yanked": None, "metadata_sha256": None})

    def _add(self, name, entry):
        self.projects.setdefault(canonical(name), []).append(entry)

    def write(self):
        for project, files in self.projects.items():
            self._write_html(project, files, "html", with_metadata=True)
            self._write_html(project, files, "nometa", with_metadata=False)
            self._write_json(project, files)

    def _write_html(self, project, files, flavour, with_metadata):
        d = os.path.join(self.root, flavour, project)
        os.makedirs(d, exist_ok=True)
        links = []
        for f in files:
            attrs = f' href="../../files/{f["filename"]}#sha256={f["sha256"]}"'
            if f["requires_python"]:
                attrs += f' data-requires-python="{html.escape(f["requires_python"])}"'
            if f["yanked"] is not None:
                attrs += f' data-yanked="{html.escape(f["yanked"])}"'
            if with_metadata and f["metadata_sha256"]:
                # PEP 714: both names, so that installers from before it (Debian's pip 23) find the file too.
                attrs += f' data-core-metadata="sha256={f["metadata_sha256"]}"'
                attrs += f' data-dist-info-metadata="sha256={f["metadata_sha256"]}"'
            links.append(f"<a{attrs}>{f['filename']}</a><br/>")
        with open(os.path.join(d, "index.html"), "w") as out:
            out.write("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.1\">"
                      f"<title>Links for {project}</title></head><body><h1>Links for {project}</h1>\n"
                      + "\n".join(links) + "\n</body></html>\n")

    def _write_json(self, project, files):
        d = os.path.join(self.root, "json", project)
        os.makedirs(d, exist_ok=True)
        entries = []
        for f in files:
            e = {"filename": f["filename"], "url": f"../../files/{f['filename']}", "hashes": {"sha256": f["sha256"]},
                 "size": f["size"]}
            if f["requires_python"]:
                e["requires-python"] = f["requires_python"]
            if f["yanked"] is not None:
                e["yanked"] = f["yanked"] or True
            if f["metadata_sha256"]:
                e["core-metadata"] = {"sha256": f["metadata_sha256"]}
                e["dist-info-metadata"] = {"sha256": f["metadata_sha256"]}
            entries.append(e)
        with open(os.path.join(d, "index.json"), "w") as out:
            json.dump({"meta": {"api-version": "1.1"}, "name": project, "files": entries}, out)


def _sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class NginxIndex(NginxServer):
    """nginx serving a PackageIndex root on 127.0.0.1; requests() parses its access log."""

    def __init__(self, root, netns=None):
        super().__init__(lambda port, d: f"""
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location /html/ {{ index index.html; types {{ }} default_type text/html; }}
    location /nometa/ {{ index index.html; types {{ }} default_type text/html; }}
    location /json/ {{ index index.json; types {{ }} default_type application/vnd.pypi.simple.v1+json; }}
    location /files/ {{ types {{ }} default_type application/octet-stream; }}
  }}""", access_log_format='$request_method $request_uri $status $body_bytes_sent "$http_range"', netns=netns)

    def index_url(self, flavour):
        return f"{self.url}/{flavour}/"

    def requests(self):
        """Every request so far: (method, path, status, bytes, range)."""
        out = []
        for line in self.access_log().splitlines():
            m = re.match(r'(\S+) (\S+) (\d+) (\d+) "(.*)"', line.strip())
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)),
                            None if m.group(5) == "-" else m.group(5)))
        return out


class IndexTestCase(unittest.TestCase):
    """A test class with a temp dir (`dir`) and a PackageIndex (`index`) served by nginx (`server`)."""

    PREFIX = "lazyfs-it-pkg."
    TOOLS = ("nginx",)  # skipped (a failure under $CI) when one is missing

    @classmethod
    def fill_index(cls, index):
        raise NotImplementedError

    @classmethod
    def after_write(cls, index):
        """Runs once the pages are written, before nginx starts: tamper with served files here."""

    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        for tool in cls.TOOLS:
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        cls.dir = tempfile.mkdtemp(prefix=cls.PREFIX)
        cls.index = PackageIndex(os.path.join(cls.dir, "index"))
        cls.fill_index(cls.index)
        cls.index.write()
        cls.after_write(cls.index)
        cls.server = NginxIndex(cls.index.root).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def resolve_lock(self, requirements, name, python="3.11"):
        """`lazyfs pkg resolve -o DIR/NAME.lock REQUIREMENTS` on the HTML flavour; the lock's path."""
        lock = os.path.join(self.dir, name + ".lock")
        proc = harness.run_lazyfs(["pkg", "resolve", "-q", "--index-url", self.server.index_url("html"),
                                   "--python-version", python, "--cache-dir", os.path.join(self.dir, "cache"),
                                   "-o", lock, *requirements], timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return lock
