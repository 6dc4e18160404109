"""Package layers (`lazyfs pkg install LOCK`) and package mounts (`lazyfs mount --packages LOCK [IMAGE] MNT`)
against a real local index (nginx on 127.0.0.1) and, for artifacts, Debian's docker-registry:

  - every dist of a lock becomes an eStargz layer in the host cache, built once: a second install
    downloads nothing, four concurrent installs of one fresh lock build each layer exactly once;
  - a mount shows MNT/packages/NAME==VERSION/files and the merged MNT/packages/site, byte for byte the
    wheels' files; Debian's python3 imports from the merged view: PEP 420 namespace packages split over
    two dists, a wheel's .pth file, a console script;
  - two dists shipping one path with different bytes are reported (lazyfs stats --json);
  - a second version of a dist whose big file did not change adds about its changed files to the cache,
    not a second copy of the big one;
  - `--push docker://REG/PREFIX` stores each layer as PREFIX/NAME:VERSION-nopyc with the lock's sha256 in
    an annotation; a host with an empty cache mounts it from there lazily (ranged blob reads, nothing
    built, no wheel downloaded);
  - bad wheels (bytes that are not the lock's, a `.wh.` member that would be a whiteout) fail naming the
    dist and the cause, and leave no layer behind; the dists before them keep theirs.
"""

import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest
import urllib.request
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from package_index import IndexTestCase  # noqa: E402
from pip_reference import PIP_PYTHON, host_python_version  # noqa: E402
from registry_harness import Registry  # noqa: E402

BIG = random.Random(7).randbytes(3 << 20)  # incompressible, the same in both versions of app-lib


def layer_dirs(cache):
    root = os.path.join(cache, "package-layers")
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []


def cache_chunk_bytes(cache):
    proc = harness.run_lazyfs(["cache", "stats", "--json", "--cache-dir", cache])
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    return stats["chunk_bytes"]


def read_tree(root):
    """Every regular file under root: relative path -> sha256."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def wheel_files(path):
    """The files a wheel installs (purelib), relative path -> sha256; RECORD left out (it is rewritten)."""
    with zipfile.ZipFile(path) as z:
        return {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()
                if not n.endswith("/") and not n.endswith("/RECORD")}


class PackageLayersTest(IndexTestCase):
    PREFIX = "lazyfs-it-layers."
    TOOLS = ("nginx", "docker-registry")

    @classmethod
    def fill_index(cls, index):
        cls.wheels = {}
        cls.wheels["app-main"] = index.add_wheel(
            "app-main", "1.0", requires=["app-lib<1.3", "app-cli", "ns-a", "ns-b", "pth-dist"])
        cls.wheels["app-lib"] = index.add_wheel(
            "app-lib", "1.2", extra_members=[("app_lib/util.py", b"def twice(x):\n    return 2 * x\n"),
                                             ("app_lib/big.bin", BIG)])
        index.add_wheel("app-lib", "1.3", extra_members=[("app_lib/util.py", b"def twice(x):\n    return x + x\n"),
                                                         ("app_lib/big.bin", BIG)])
        index.add_site_cases()  # app-cli (a console script), ns-a + ns-b (PEP 420), pth-dist (a .pth)
        index.add_wheel("clash-a", "1.0", extra_members=[("clash/common.py", b"WHO = 'a'\n")])
        index.add_wheel("clash-b", "1.0", extra_members=[("clash/common.py", b"WHO = 'b'\n")])
        cls.tampered = index.add_wheel("tampered", "1.0")
        index.add_wheel("whiteout", "1.0", extra_members=[("app_lib/.wh.util.py", b"")])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.python = host_python_version()
        cls.mounts = harness.MountSet()

    @classmethod
    def tearDownClass(cls):
        cls.mounts.cleanup()
        super().tearDownClass()

    def lock(self, requirements, name):
        return self.resolve_lock(requirements, name, self.python)

    def install(self, lock, cache, *extra, ok=True):
        proc = harness.run_lazyfs(["pkg", "install", "--json", lock, "--cache-dir", cache, *extra], timeout=300)
        if not ok:
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            return proc.stderr
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def mount_packages(self, lock, cache, *extra):
        m = self.mounts.mount(None, cache_dir=cache, extra=["--packages", lock, *extra])
        self.assertTrue(m.ok, m.describe())
        return m

    def stats(self, m):
        proc = harness.run_lazyfs(["stats", "--json", m.mountpoint])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def site_python(self, site, code):
        """Debian's python3 without its own site-packages, with `site` processed as a site dir (.pth files)."""
        prog = f"import site, sys; site.addsitedir({site!r}); " + code
        env = {"PATH": os.path.join(site, "bin") + ":/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": site}
        return subprocess.run([PIP_PYTHON, "-S", "-c", prog], env=env, capture_output=True, text=True, timeout=60)

    def test_layers_built_once_and_mounted(self):
        lock = self.lock(["app-main"], "app")
        cache = os.path.join(self.dir, "cache-app")
        # What a build killed half-way leaves: its build directory (the flock died with it).
        with open(lock) as f:
            app_lib = next(p for p in json.load(f)["packages"] if p["name"] == "app-lib")
        stale = os.path.join(cache, "package-layers", f".build-{app_lib['sha256']}-nopyc", "tree")
        os.makedirs(stale)
        with open(os.path.join(stale, "half-written.py"), "w") as f:
            f.write("x =")
        out = self.install(lock, cache)
        names = sorted(l["name"] for l in out["layers"])
        self.assertEqual(names, ["app-cli", "app-lib", "app-main", "ns-a", "ns-b", "pth-dist"])
        self.assertTrue(all(l["where"] == "built" and l["interpreter"] == "nopyc" for l in out["layers"]), out)
        self.assertEqual(len(layer_dirs(cache)), 6)
        self.assertEqual(glob.glob(os.path.join(cache, "package-layers", ".build-*")), [])

        self.server.clear_access_log()
        again = self.install(lock, cache)
        self.assertTrue(all(l["where"] == "host" for l in again["layers"]), again)
        self.assertEqual(again["downloaded_bytes"], 0)
        self.assertEqual(self.server.requests(), [])

        m = self.mount_packages(lock, cache)
        packages = m.path("packages")
        self.assertEqual(sorted(os.listdir(packages)),
                         ["app-cli==0.3", "app-lib==1.2", "app-main==1.0", "ns-a==1.0", "ns-b==1.0", "pth-dist==1.0",
                          "site"])
        files = read_tree(os.path.join(packages, "app-lib==1.2", "files"))
        for name, digest in wheel_files(self.wheels["app-lib"]).items():
            self.assertEqual(files.get(name), digest, name)
        site = os.path.join(packages, "site")
        site_files = read_tree(site)
        for dist in os.listdir(packages):
            if dist != "site":
                for rel, digest in read_tree(os.path.join(packages, dist, "files")).items():
                    self.assertEqual(site_files.get(rel), digest, f"{dist}: {rel}")
        self.assertEqual(self.server.requests(), [])  # mounted from the host's layers

        proc = self.site_python(site, "import app_main, app_lib.util, ns.a, ns.b, hidden_mod; "
                                      "print(app_lib.util.twice(21), ns.a.NAME + ns.b.NAME, hidden_mod.FOUND, "
                                      "app_lib.__file__)")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), f"42 ab True {site}/app_lib/__init__.py")
        script = os.path.join(site, "bin", "app-hello")
        proc = subprocess.run([script], env={"PYTHONPATH": site}, capture_output=True, text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout), (0, "hello from app-cli\n"), proc.stderr)
        stats = self.stats(m)
        self.assertEqual(stats["package_conflicts"], [])
        self.assertEqual(stats["read_errors"], 0)

    def test_concurrent_installs_build_each_layer_once(self):
        lock = self.lock(["app-main"], "concurrent")
        cache = os.path.join(self.dir, "cache-concurrent")
        procs = [subprocess.Popen([harness.LAZYFS, "pkg", "install", "--json", lock, "--cache-dir", cache],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        built = {}
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
            for layer in json.loads(out)["layers"]:
                built[layer["name"]] = built.get(layer["name"], 0) + (layer["where"] == "built")
        self.assertEqual(built, {n: 1 for n in ["app-cli", "app-lib", "app-main", "ns-a", "ns-b", "pth-dist"]})
        self.assertEqual(len(layer_dirs(cache)), 6)
        self.assertEqual(glob.glob(os.path.join(cache, "package-layers", ".build-*")), [])

    def test_conflicting_paths_are_reported(self):
        lock = self.lock(["clash-a", "clash-b"], "clash")
        cache = os.path.join(self.dir, "cache-clash")
        m = self.mount_packages(lock, cache)
        conflicts = self.stats(m)["package_conflicts"]
        self.assertEqual(conflicts, ["packages/site/clash/common.py (clash-a==1.0 and clash-b==1.0)"])
        self.assertIn("two dists ship packages/site/clash/common.py", m.log())

    def test_second_version_adds_only_changed_chunks(self):
        cache = os.path.join(self.dir, "cache-versions")
        first = self.mount_packages(self.lock(["app-lib==1.2"], "v12"), cache)
        read_tree(first.path("packages"))
        before = cache_chunk_bytes(cache)
        self.assertGreaterEqual(before, len(BIG))
        second = self.mount_packages(self.lock(["app-lib==1.3"], "v13"), cache)
        tree = read_tree(second.path("packages/app-lib==1.3/files"))
        self.assertEqual(tree["app_lib/big.bin"], hashlib.sha256(BIG).hexdigest())
        added = cache_chunk_bytes(cache) - before
        # The changed files (util.py, __init__.py, METADATA, RECORD...) are a few KiB; BIG is 3 MiB.
        self.assertLess(added, 64 << 10, f"the second version added {added} bytes")
        stats = self.stats(second)
        self.assertEqual(stats["read_errors"], 0)

    def test_push_and_mount_from_registry(self):
        lock = self.lock(["app-lib==1.2", "app-cli"], "push")
        with Registry() as reg:
            prefix = f"docker://{reg.host}/lazyfs-packages"
            pushed = self.install(lock, os.path.join(self.dir, "cache-pusher"), "--registry", prefix, "--push",
                                  "--insecure-registry", reg.host)
            self.assertTrue(all(l["pushed"] for l in pushed["layers"]), pushed)
            req = urllib.request.Request(reg.url("/v2/lazyfs-packages/app-lib/manifests/1.2-nopyc"),
                                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                manifest = json.load(r)
            with open(lock) as f:
                locked = {p["name"]: p for p in json.load(f)["packages"]}
            self.assertEqual(manifest["annotations"]["dev.lazyfs.python.wheel.sha256"], locked["app-lib"]["sha256"])
            self.assertIn("containerd.io/snapshot/stargz/toc.digest", manifest["layers"][0]["annotations"])

            self.server.clear_access_log()
            empty = os.path.join(self.dir, "cache-empty")
            m = self.mount_packages(lock, empty, "--package-registry", prefix, "--insecure-registry", reg.host)
            self.assertEqual(layer_dirs(empty), [])  # nothing built here
            refs = sorted(glob.glob(os.path.join(empty, "package-layers", "*.ref")))
            self.assertEqual(len(refs), 2)  # remembered by digest: the next mount asks the registry nothing
            with open(refs[0]) as f:
                self.assertRegex(f.read(), rf"^docker://{reg.host}/lazyfs-packages/app-(lib|cli)@sha256:[0-9a-f]{{64}}$")
            self.assertEqual(self.server.requests(), [])  # no wheel downloaded
            with open(m.path("packages/app-lib==1.2/files/app_lib/util.py"), "rb") as f:
                self.assertEqual(f.read(), b"def twice(x):\n    return 2 * x\n")
            stats = self.stats(m)
            # Lazy: the 3 MiB file was not read, so far less than the layer was fetched.
            layer_bytes = sum(l["size"] for l in stats["layers"])
            self.assertGreater(layer_bytes, len(BIG))
            self.assertLess(stats["bytes_fetched"], 256 << 10, stats)
            proc = self.site_python(m.path("packages/site"), "import app_lib.util; print(app_lib.util.twice(4))")
            self.assertEqual((proc.returncode, proc.stdout.strip()), (0, "8"), proc.stderr)

    def test_requirements_need_an_image(self):
        mnt = os.path.join(self.dir, "mnt-requirements")
        os.makedirs(mnt, exist_ok=True)
        proc = harness.run_lazyfs(["mount", "--cache-dir", os.path.join(self.dir, "cache-req"), "--packages", "app-lib",
                                   "--index-url", self.server.index_url("html"), mnt])
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("resolved for an image's python3", proc.stderr)
        self.assertFalse(harness.is_mounted(mnt))

    def test_bad_wheels_leave_no_layer(self):
        cache = os.path.join(self.dir, "cache-bad")
        lock = self.lock(["app-lib==1.2", "tampered"], "tampered")
        with open(self.tampered, "r+b") as f:  # the index now serves other bytes than it listed
            data = f.read()
            f.seek(0)
            f.write(data[:-1] + bytes([data[-1] ^ 1]))
        err = self.install(lock, cache, ok=False)
        self.assertIn("tampered==1.0", err)
        self.assertIn("the lock says sha256:", err)
        with open(lock) as f:
            locked = {p["name"]: p["sha256"] for p in json.load(f)["packages"]}
        self.assertEqual(layer_dirs(cache), [locked["app-lib"] + "-nopyc"])  # installed before it, kept

        err = self.install(self.lock(["whiteout"], "whiteout"), cache, ok=False)
        self.assertIn("whiteout==1.0", err)
        self.assertIn("would be a whiteout", err)
        self.assertEqual(layer_dirs(cache), [locked["app-lib"] + "-nopyc"])
        self.assertEqual(glob.glob(os.path.join(cache, "package-layers", ".build-*")), [])


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
