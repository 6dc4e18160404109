"""`lazyfs pkg resolve` against a real local index (nginx on 127.0.0.1, wheels the test makes), each case
also resolved by Debian's pip (`pip install --dry-run --ignore-installed --report`) on the same index for
the same interpreter; the pinned sets must agree, and agree with what the case expects.

Cases: several versions and ranges, yanked files (and an exact pin of one), pre-releases only,
Requires-Python, extras (also an extra of a dependency), markers, a cycle, a conflict that needs
backtracking, a deep conflict with no solution (explained through its chain), a compiled extension
tagged for the target next to one for another platform, -r/-c files, pip's hash-checking mode, and the
lock file:
written, read back by --lock (which keeps an older pin that still fits), refused when hostile.
All three index flavours (HTML with metadata files, JSON, HTML without them) give the same answer.

DebianClosuresTest does the same for the ten real requirement sets of debian_wheels.CLOSURES, over
wheels made from Debian's python3-* packages (built on the first run, then cached). pip is given the
index flavour without metadata files there, see pip_reference.py for why.
"""

import hashlib
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from debian_wheels import CLOSURES, DEBIAN_ROOTS, debian_wheels  # noqa: E402
from package_index import IndexTestCase  # noqa: E402
from pip_reference import host_python_version, pip_available, pip_resolve  # noqa: E402

NATIVE_TAG = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"

# (requirements, expected pins or None for "no solution")
CASES = {
    "newest": (["alpha"], {"alpha": "2.0", "beta": "1.5"}),
    "ranges": (["alpha<2"], {"alpha": "1.1", "beta": "1.0"}),
    "yanked": (["yank"], {"yank": "1.0"}),
    "yanked-pin": (["yank==1.1"], {"yank": "1.1"}),
    "pre-only": (["preonly"], {"preonly": "1.0b2"}),
    "pre-not-taken": (["prefinal"], {"prefinal": "1.0"}),
    "requires-python": (["rp"], {"rp": "1.0"}),
    "extras": (["uses-extra"], {"uses-extra": "1.0", "withextra": "1.2", "clickish": "3.0"}),
    "extras-root": (["withextra[CLI]==1.1"], {"withextra": "1.1", "clickish": "2.0"}),
    "markers": (["marked"], {"marked": "1.0", "always": "1.0"}),
    "cycle": (["cyc-a"], {"cyc-a": "1.0", "cyc-b": "1.0"}),
    "backtrack": (["deep", "d2>=1"], {"deep": "1.0", "d2": "1.1"}),
    "native": (["native"], {"native": "1.0"}),
    "no-solution": (["top", "leaf>=1"], None),
}


def add_cases(index):
    """The wheels the CASES resolve over."""
    index.add_wheel("alpha", "1.0", requires=["beta<1.5"])
    index.add_wheel("alpha", "1.1", requires=["beta<1.5"])
    index.add_wheel("alpha", "2.0", requires=["beta>=1.2"])
    index.add_wheel("beta", "1.0")
    index.add_wheel("beta", "1.5")
    index.add_wheel("yank", "1.0")
    index.add_wheel("yank", "1.1", yanked="broken")
    index.add_wheel("preonly", "1.0b1")
    index.add_wheel("preonly", "1.0b2")
    index.add_wheel("prefinal", "1.0")
    index.add_wheel("prefinal", "2.0rc1")
    index.add_wheel("rp", "1.0", requires_python=">=3.7")
    index.add_wheel("rp", "2.0", requires_python=">=3.99")
    index.add_wheel("withextra", "1.1", requires=["clickish<3; extra == 'cli'"], extras=["cli"])
    index.add_wheel("withextra", "1.2", requires=["clickish>=2; extra == 'cli'"], extras=["cli"])
    index.add_wheel("clickish", "2.0")
    index.add_wheel("clickish", "3.0")
    index.add_wheel("uses-extra", "1.0", requires=["withextra[cli]>=1"])
    index.add_wheel("marked", "1.0", requires=["never; sys_platform == 'win32'", "always; python_version >= '3.8'",
                                               "old-only; python_version < '3.0'"])
    index.add_wheel("always", "1.0")
    index.add_wheel("cyc-a", "1.0", requires=["cyc-b"])
    index.add_wheel("cyc-b", "1.0", requires=["cyc-a"])
    index.add_wheel("deep", "1.0")
    index.add_wheel("deep", "2.0", requires=["d1"])
    index.add_wheel("d1", "1.0", requires=["d2<1"])
    index.add_wheel("d2", "0.5")
    index.add_wheel("d2", "1.1")
    index.add_wheel("native", "1.0", tag=NATIVE_TAG)
    index.add_wheel("native", "2.0", tag="cp311-cp311-win_amd64")
    index.add_wheel("top", "1.0", requires=["mid"])
    index.add_wheel("mid", "1.0", requires=["leaf<1"])
    index.add_wheel("leaf", "0.5")
    index.add_wheel("leaf", "2.0")


class PkgResolveTest(IndexTestCase):
    PREFIX = "lazyfs-it-resolve."

    @classmethod
    def fill_index(cls, index):
        add_cases(index)

    @classmethod
    def setUpClass(cls):
        if not pip_available():
            raise unittest.SkipTest("Debian's pip (python3-pip) not installed")
        super().setUpClass()
        cls.python = host_python_version()

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="cache.", dir=self.dir)

    def resolve(self, args, flavour="html", ok=True):
        proc = harness.run_lazyfs(["pkg", "resolve", "--json", "--index-url", self.server.index_url(flavour),
                                   "--python-version", self.python, "--cache-dir", self.cache, *args], timeout=120)
        if not ok:
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            return proc.stderr
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    @staticmethod
    def pins(resolved):
        return {p["name"]: p["version"] for p in resolved["packages"]}

    def test_cases_agree_with_pip(self):
        for name, (requirements, expected) in CASES.items():
            with self.subTest(case=name):
                pip = pip_resolve(self.server.index_url("html"), requirements)
                if expected is None:
                    self.assertFalse(pip.ok, f"pip found {pip.pins}")
                    self.resolve(requirements, ok=False)
                    continue
                self.assertTrue(pip.ok, pip.stderr)
                self.assertEqual(pip.pins, expected, "pip's answer is not the case's")
                for flavour in ("html", "json", "nometa"):
                    self.assertEqual(self.pins(self.resolve(requirements, flavour=flavour)), expected, flavour)

    def test_no_solution_is_explained_through_the_chain(self):
        err = self.resolve(["top", "leaf>=1"], ok=False)
        self.assertIn("cannot all be met", err)
        self.assertIn("mid 1.0 requires 'leaf<1'", err)
        self.assertIn("'leaf>=1' from your requirement 'leaf>=1' (command line)", err)
        self.assertIn("top 1.0", err)

    def test_requirements_and_constraints_files(self):
        req = os.path.join(self.dir, "requirements.txt")
        con = os.path.join(self.dir, "constraints.txt")
        with open(req, "w") as f:
            f.write("# app\nalpha \\\n  >=1.0   # any\nbeta ; python_version >= '3'\n-c constraints.txt\n")
        with open(con, "w") as f:
            f.write("alpha<2\nunrelated==9\n")
        resolved = self.resolve(["-r", req])
        self.assertEqual(self.pins(resolved), {"alpha": "1.1", "beta": "1.0"})
        pip = pip_resolve(self.server.index_url("html"), ["-r", req])
        self.assertTrue(pip.ok, pip.stderr)
        self.assertEqual(pip.pins, self.pins(resolved))

    def test_hash_checking_mode(self):
        sha = {f["filename"].split("-")[0] + "-" + f["filename"].split("-")[1]: f["sha256"]
               for files in self.index.projects.values() for f in files}
        req = os.path.join(self.dir, "hashed.txt")
        with open(req, "w") as f:
            f.write(f"alpha==1.1 --hash=sha256:{sha['alpha-1.1']}\nbeta==1.0 \\\n  --hash=sha256:{sha['beta-1.0']}\n")
        resolved = self.resolve(["-r", req])
        self.assertEqual(self.pins(resolved), {"alpha": "1.1", "beta": "1.0"})
        pip = pip_resolve(self.server.index_url("html"), ["-r", req])
        self.assertTrue(pip.ok, pip.stderr)
        self.assertEqual(pip.pins, self.pins(resolved))
        # A dependency without a hash: both refuse; lazyfs says which line to add.
        with open(req, "w") as f:
            f.write(f"alpha==1.1 --hash=sha256:{sha['alpha-1.1']}\n")
        self.assertFalse(pip_resolve(self.server.index_url("html"), ["-r", req]).ok)
        err = self.resolve(["-r", req], ok=False)
        self.assertIn(f"beta==1.0 --hash=sha256:{sha['beta-1.0']}", err)
        # A hash that matches no file, and an unpinned requirement in hash mode.
        with open(req, "w") as f:
            f.write("beta==1.0 --hash=sha256:" + "0" * 64 + "\n")
        self.assertIn("hashed.txt:1", self.resolve(["-r", req], ok=False))
        with open(req, "w") as f:
            f.write(f"alpha>=1 --hash=sha256:{sha['alpha-1.1']}\n")
        self.assertIn("is not pinned with ==", self.resolve(["-r", req], ok=False))

    def test_lock_file_written_reused_and_checked(self):
        lock = os.path.join(self.dir, "pkg.lock")
        resolved = self.resolve(["alpha<2", "-o", lock])
        with open(lock) as f:
            data = json.load(f)
        self.assertEqual(data["lock_version"], 1)
        self.assertEqual(data["requirements"], ["alpha<2"])
        self.assertEqual(data["environment"]["markers"]["python_full_version"], self.python)
        self.assertIn("manylinux_2_17_x86_64", data["environment"]["platform_tags"])
        by_name = {p["name"]: p for p in data["packages"]}
        self.assertEqual(set(by_name), {"alpha", "beta"})
        wheel = os.path.join(self.index.root, "files", by_name["alpha"]["filename"])
        with open(wheel, "rb") as f:
            self.assertEqual(by_name["alpha"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(by_name["alpha"]["requires"], ["beta"])
        self.assertEqual(by_name["beta"]["required_by"], ["alpha 1.1"])
        self.assertTrue(by_name["alpha"]["url"].startswith(self.server.url + "/files/"))
        self.assertEqual(self.pins(resolved), {"alpha": "1.1", "beta": "1.0"})

        # --lock: a locked version that still fits wins over a newer one.
        older = os.path.join(self.dir, "older.lock")
        self.resolve(["alpha==1.0", "-o", older])
        self.assertEqual(self.pins(self.resolve(["alpha<2", "--lock", older])), {"alpha": "1.0", "beta": "1.0"})
        # --lock alone re-resolves the lock's own requirements.
        self.assertEqual(self.pins(self.resolve(["--lock", older])), {"alpha": "1.0", "beta": "1.0"})

        with open(older, "w") as f:
            f.write('{"lock_version": 1, "packages": [{"name": "Alpha"}]}')
        err = self.resolve(["alpha", "--lock", older], ok=False)
        self.assertIn("older.lock: packages[0]", err)

    def test_warm_resolution_revalidates_pages_only(self):
        self.resolve(["uses-extra", "alpha"])
        self.server.clear_access_log()
        warm = self.resolve(["uses-extra", "alpha"])
        requests = self.server.requests()
        self.assertTrue(all(r[2] == 304 for r in requests), requests)
        self.assertEqual(warm["stats"]["index"]["not_modified"], len(requests))
        self.assertEqual(len(requests), len({r[1] for r in requests}))  # one per project
        self.assertEqual(len(requests), 5)  # uses-extra, withextra, clickish, alpha, beta

    def test_cold_requests_one_page_per_project_and_one_metadata_file_per_dist(self):
        self.server.clear_access_log()
        resolved = self.resolve(["uses-extra", "alpha", "marked", "cyc-a"])
        requests = self.server.requests()
        pages = [r for r in requests if r[1].startswith("/html/")]
        metadata = [r for r in requests if r[1].endswith(".metadata")]
        self.assertEqual(len(pages), len({r[1] for r in pages}), pages)
        self.assertEqual(len(metadata), len(resolved["packages"]), metadata)
        self.assertEqual(len(requests), len(pages) + len(metadata), requests)

    def test_bad_requirements_are_clear_errors(self):
        self.assertIn("names a URL", self.resolve(["alpha @ https://example.invalid/a.whl"], ok=False))
        self.assertIn("nothing to resolve", self.resolve([], ok=False))
        err = self.resolve(["alpha>=", "beta"], ok=False)
        self.assertIn("alpha>=", err)
        err = self.resolve(["no-such-project"], ok=False)
        self.assertIn("no index has a project named 'no-such-project'", err)


def _lying_central_directory(path):
    """Point the wheel's end-of-central-directory record at an offset past the end of the file."""
    with open(path, "r+b") as f:
        data = f.read()
        eocd = data.rfind(b"PK\x05\x06")
        f.seek(eocd + 16)
        f.write(struct.pack("<I", len(data) + 4096))


class HostileIndexTest(IndexTestCase):
    """Bad input met while resolving: exit 1, a message naming the project, the URL and the cause; nothing
    unverified kept in the cache (a second run fails the same way and asks for the same file again)."""

    PREFIX = "lazyfs-it-resolve-bad."

    @classmethod
    def fill_index(cls, index):
        for dependency in ("liar", "noname", "badreq", "huge", "cdlies"):
            index.add_wheel(f"needs-{dependency}", "1.0", requires=[dependency])
        index.add_wheel("liar", "1.0", wrong_metadata_hash=True)
        index.add_wheel("noname", "1.0", metadata_override="Metadata-Version: 2.1\nVersion: 1.0\n\n")
        index.add_wheel("badreq", "1.0", requires=["ok (>=1"])
        cls.huge = index.add_wheel("huge", "1.0")
        cls.cdlies = index.add_wheel("cdlies", "1.0")
        index.add_wheel("broken-json", "1.0")

    @classmethod
    def after_write(cls, index):
        with open(cls.huge + ".metadata", "r+b") as f:
            f.truncate(1 << 30)  # a 1 GiB metadata file (sparse)
        _lying_central_directory(cls.cdlies)
        with open(os.path.join(index.root, "json", "broken-json", "index.json"), "w") as f:
            f.write('{"meta": {"api-version": "1.1"}, "name": "broken-json", "files": [')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cache = os.path.join(cls.dir, "cache")

    def fails(self, requirement, flavour="html"):
        proc = harness.run_lazyfs(["pkg", "resolve", "-q", "--index-url", self.server.index_url(flavour),
                                   "--python-version", "3.11", "--cache-dir", self.cache, requirement], timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        return proc.stderr

    def assertFailsTwice(self, requirement, *needles, flavour="html"):
        for attempt in range(2):
            self.server.clear_access_log()
            err = self.fails(requirement, flavour)
            for needle in needles:
                self.assertIn(needle, err, f"attempt {attempt + 1}")
        return self.server.requests()

    def test_metadata_file_with_a_wrong_hash(self):
        requests = self.assertFailsTwice("needs-liar", "liar-1.0-py3-none-any.whl.metadata", "hashes to sha256:")
        self.assertIn("/files/liar-1.0-py3-none-any.whl.metadata", [r[1] for r in requests])  # not cached

    def test_metadata_without_name(self):
        self.assertFailsTwice("needs-noname", "noname-1.0-py3-none-any.whl", "Name")

    def test_requires_dist_that_does_not_parse(self):
        self.assertFailsTwice("needs-badreq", "badreq 1.0", "/files/badreq-1.0-py3-none-any.whl",
                              "Requires-Dist that does not parse")

    def test_one_gib_metadata_file(self):
        requests = self.assertFailsTwice("needs-huge", "huge-1.0-py3-none-any.whl.metadata")
        self.assertLess(sum(r[3] for r in requests), 64 << 20, requests)

    def test_wheel_whose_central_directory_lies(self):
        requests = self.assertFailsTwice("needs-cdlies", "cdlies-1.0-py3-none-any.whl", "central directory",
                                         flavour="nometa")
        self.assertTrue(all(r[4] or r[0] == "HEAD" for r in requests if r[1].endswith(".whl")), requests)

    def test_malformed_json_page(self):
        self.assertFailsTwice("broken-json", "/json/broken-json/", flavour="json")


class DebianClosuresTest(IndexTestCase):
    PREFIX = "lazyfs-it-debian-wheels."
    TOOLS = ("nginx", "apt-get")

    @classmethod
    def fill_index(cls, index):
        index.add_wheel_files(debian_wheels(DEBIAN_ROOTS))

    @classmethod
    def setUpClass(cls):
        if not pip_available():
            raise unittest.SkipTest("Debian's pip (python3-pip) not installed")
        super().setUpClass()
        cls.python = host_python_version()

    def test_real_closures_agree_with_pip(self):
        sizes = {}
        for name, requirements in CLOSURES.items():
            with self.subTest(set=name):
                pip = pip_resolve(self.server.index_url("nometa"), requirements)
                self.assertTrue(pip.ok, pip.stderr)
                cache = tempfile.mkdtemp(prefix="cache.", dir=self.dir)
                self.server.clear_access_log()
                for flavour in ("html", "json"):
                    proc = harness.run_lazyfs(["pkg", "resolve", "--json", "-q", "--index-url",
                                               self.server.index_url(flavour), "--python-version", self.python,
                                               "--cache-dir", cache, *requirements], timeout=120)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    resolved = json.loads(proc.stdout)
                    self.assertEqual({p["name"]: p["version"] for p in resolved["packages"]}, pip.pins, flavour)
                sizes[name] = len(pip.pins)
        # The sets are real closures, not single dists: the largest pulls in 20.
        self.assertGreaterEqual(max(sizes.values()), 15, sizes)
        print(f"  closures agree with pip: {sizes}", file=sys.stderr)


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
