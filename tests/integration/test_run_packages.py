"""`lazyfs run --packages LOCK|REQUIREMENT... IMAGE -- CMD` under crun, against a real local index (nginx on
127.0.0.1) holding wheels repacked from Debian (flask and its closure, MarkupSafe with its compiled
extension) and synthetic ones, on a Debian python3 image built by mmdebstrap:

  - end to end: `--packages 'flask>=2' …` is resolved for the image's own python3 (probed, never the
    host's), the layers are built with .pyc compiled by that python3, and `import flask` runs from
    /packages/site, MarkupSafe's C extension included;
  - a console script of a dist runs from PATH; PEP 420 namespace packages split over two dists and a
    wheel's .pth file work; imports write nothing (every file under /packages keeps the layers' mtime);
  - a second run of the same requirements builds nothing and downloads nothing;
  - a lock made for another interpreter is refused with both named, before anything is mounted.
"""

import json
import os
import signal
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_image  # noqa: E402
import harness  # noqa: E402
from debian_wheels import DEBIAN_ROOTS, debian_wheels  # noqa: E402
from package_index import IndexTestCase  # noqa: E402

CHECK_NO_WRITES = """
import os
newer = [os.path.join(d, n) for d, _, names in os.walk('/packages') for n in names
         if os.lstat(os.path.join(d, n)).st_mtime > 946684800]
print('written:', newer)
"""


class RunPackagesTest(IndexTestCase):
    PREFIX = "lazyfs-it-run-packages."
    TOOLS = ("nginx", "crun", "mmdebstrap", "apt-get")

    @classmethod
    def fill_index(cls, index):
        index.add_wheel_files(debian_wheels(DEBIAN_ROOTS))
        index.add_site_cases()  # app-cli (a console script), ns-a + ns-b (PEP 420), pth-dist (a .pth)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import test_run  # noqa: E402  (its cgroup set-up)
        test_run.prepare_cgroups()
        layout, tag = debian_image.build_image(
            "pkg-python", ["python3"], {"Cmd": ["python3"], "Env": debian_image.DEFAULT_ENV}, lazyfs=harness.LAZYFS)
        cls.image = f"oci:{layout}:{tag}"
        cls.cache = os.path.join(cls.dir, "cache")

    def run_packages(self, packages, command, ok=True):
        proc = harness.run_lazyfs(["run", "--keep-mount", "0", "--cache-dir", self.cache,
                                   "--index-url", self.server.index_url("html"),
                                   *[a for p in packages for a in ("--packages", p)], self.image, "--", *command],
                                  timeout=900)
        if ok:
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc

    # Debian's flask, jinja2 and werkzeug metadata leave out the dependencies dpkg provides (only extras
    # remain), so the closure is named here.
    FLASK = ["flask>=2", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click"]

    def layer_names(self, dist):
        """The tar member names of the host's package layer of `dist`, in blob order."""
        root = os.path.join(self.cache, "package-layers")
        for d in os.listdir(root):
            layout = os.path.join(root, d)
            if not os.path.isdir(layout):
                continue
            with open(os.path.join(layout, "index.json")) as f:
                manifest_digest = json.load(f)["manifests"][0]["digest"].split(":")[1]
            with open(os.path.join(layout, "blobs", "sha256", manifest_digest)) as f:
                manifest = json.load(f)
            if manifest["annotations"]["dev.lazyfs.python.name"] != dist:
                continue
            blob = os.path.join(layout, "blobs", "sha256", manifest["layers"][0]["digest"].split(":")[1])
            with tarfile.open(blob, "r:gz") as t:
                return [m.name for m in t.getmembers()]
        self.fail(f"no package layer of {dist} in {root}")

    def test_flask_end_to_end(self):
        proc = self.run_packages(self.FLASK, ["python3", "-c",
                                                "import flask, markupsafe._speedups, importlib.metadata as m; "
                                                "print(m.version('flask'), flask.__file__, markupsafe._speedups.__file__)"])
        version, flask_file, speedups = proc.stdout.split()
        self.assertTrue(version.startswith("2."), proc.stdout)
        self.assertEqual(flask_file, "/packages/site/flask/__init__.py")
        self.assertTrue(speedups.startswith("/packages/site/markupsafe/_speedups.cpython-311"), speedups)
        self.assertIn("built flask==", proc.stderr)
        # The build imported flask in the image and put what the import read first in the layer, before
        # eStargz's .prefetch.landmark: a mount fetches those files at once, in the background.
        names = self.layer_names("flask")
        self.assertIn(".prefetch.landmark", names)
        first = names[:names.index(".prefetch.landmark")]
        self.assertIn("flask/__pycache__/__init__.cpython-311.pyc", first)
        self.assertNotIn("flask/__init__.py", first)  # the import reads the .pyc, not the source

        # The same requirements again: the lock resolves to the same layers, found on the host.
        self.server.clear_access_log()
        again = self.run_packages(self.FLASK, ["python3", "-c", "import flask"])
        self.assertNotIn("built ", again.stderr)
        self.assertEqual([r for r in self.server.requests() if r[1].startswith("/files/") and r[1].endswith(".whl")], [])

    def test_scripts_namespaces_pth_and_no_writes(self):
        code = ("import app_cli.main, ns.a, ns.b, hidden_mod, sys; "
                "print(ns.a.NAME + ns.b.NAME, hidden_mod.FOUND, app_cli.main.__cached__)" + "\n" + CHECK_NO_WRITES)
        proc = self.run_packages(["app-cli", "ns-a", "ns-b", "pth-dist"],
                                 ["sh", "-c", f"app-hello && python3 -c \"$0\"", code])
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], "hello from app-cli")
        self.assertEqual(lines[1], "ab True /packages/site/app_cli/__pycache__/main.cpython-311.pyc")
        self.assertEqual(lines[2], "written: []")

    def test_foreign_lock_is_refused(self):
        lock = self.resolve_lock(["app-cli"], "py312", python="3.12")
        proc = self.run_packages([lock], ["python3", "-c", "import app_cli"], ok=False)
        self.assertEqual(proc.returncode, 125, proc.stdout + proc.stderr)
        self.assertIn("was made for cp312", proc.stderr)
        self.assertIn("is cp311 (cpython 3.11", proc.stderr)

    def test_mount_with_image_unmounts_on_sigterm(self):
        """`lazyfs mount --packages LOCK IMAGE MNT`: one tree (the image's and /packages), layers compiled in
        the image; the compile sandboxes block SIGTERM for themselves, the daemon must not inherit that."""
        mounts = harness.MountSet()
        try:
            # Requirements, not a lock: resolved for the image's python3.
            m = mounts.mount(self.image, cache_dir=self.cache,
                             extra=["--packages", "app-cli", "--index-url", self.server.index_url("html")])
            self.assertTrue(m.ok, m.describe())
            self.assertTrue(os.path.isfile(m.path("usr/bin/python3")))
            self.assertTrue(os.path.isfile(m.path("packages/app-cli==0.3/files/app_cli/__pycache__/main.cpython-311.pyc")))
            self.assertTrue(os.path.isfile(m.path("packages/site/bin/app-hello")))
            for pid in m.pids:
                os.kill(pid, signal.SIGTERM)
            harness.wait_for(lambda: not harness.is_mounted(m.mountpoint), 20, "the mount to go on SIGTERM")
        finally:
            mounts.cleanup()

    def test_pkg_install_of_requirements_for_an_image(self):
        proc = harness.run_lazyfs(["pkg", "install", "--json", "--cache-dir", self.cache, "--compile-in", self.image,
                                   "--index-url", self.server.index_url("html"), "ns-a", "ns-b"], timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        layers = json.loads(proc.stdout)["layers"]
        self.assertEqual(sorted(l["name"] for l in layers), ["ns-a", "ns-b"])
        self.assertTrue(all(l["interpreter"] == "cp311" for l in layers), layers)

    def test_lock_for_the_image_runs(self):
        lock = self.resolve_lock(["app-cli"], "py311", python="3.11")
        proc = self.run_packages([lock], ["app-hello"])
        self.assertEqual(proc.stdout, "hello from app-cli\n")


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
