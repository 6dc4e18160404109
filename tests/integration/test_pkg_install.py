"""`lazyfs pkg install LOCK --to DIR` against a real local index (nginx on 127.0.0.1): a lock made by
`lazyfs pkg resolve` is installed as OpenLambda's /packages/NAME==VERSION/files, and Debian's python3
imports from there (with -S, so nothing of the host's dist-packages can stand in):

  - synthetic wheels: every dist imports, a console script runs from bin/, a second install downloads
    nothing, four concurrent installs of one lock leave every dist complete and no temporary files;
  - real wheels repacked from Debian (tests/integration/debian_wheels.py): jinja2 with MarkupSafe's
    compiled extension imports and renders (Debian's jinja2 declares no MarkupSafe, so it is asked for);
  - bad wheels: a wheel whose bytes are not the lock's, and one with a '../' member, fail with the dist
    and the cause named; nothing of them is installed, the dists before them stay installed;
  - --compile-in IMAGE: the .pyc come from the image's own python3 in a sandbox (test_run's Debian python
    image), are hash-based (valid on a read-only tree), listed in RECORD, and used by an import that writes
    nothing; an image without python3 fails and installs nothing.
"""

import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from debian_wheels import DEBIAN_ROOTS, debian_wheels  # noqa: E402
from package_index import IndexTestCase  # noqa: E402
from pip_reference import PIP_PYTHON, host_python_version  # noqa: E402


def python_with(packages_dir, code):
    """Debian's python3 without site-packages, on the package directories' files."""
    path = ":".join(sorted(glob.glob(os.path.join(packages_dir, "*", "files"))))
    env = {"PYTHONPATH": path, "PATH": ":".join(sorted(glob.glob(os.path.join(packages_dir, "*", "files", "bin"))))
           + ":/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([PIP_PYTHON, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)


class PkgInstallTest(IndexTestCase):
    PREFIX = "lazyfs-it-install."

    @classmethod
    def fill_index(cls, index):
        index.add_wheel("app-main", "1.0", requires=["app-lib>=1", "app-cli"])
        index.add_wheel("app-lib", "1.2")
        index.add_wheel("app-cli", "0.3", console_scripts={"app-hello": "app_cli.main:run"},
                        extra_members=[("app_cli/main.py", b"def run():\n    print('hello from app-cli')\n    return 0\n")])
        cls.tampered = index.add_wheel("tampered", "1.0")
        index.add_wheel("escapes", "1.0", extra_members=[("../outside.py", b"boom = 1\n")])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.python = host_python_version()

    def lock(self, requirements, name):
        return self.resolve_lock(requirements, name, self.python)

    def install(self, lock, to, ok=True):
        proc = harness.run_lazyfs(["pkg", "install", "--json", lock, "--to", to], timeout=300)
        if not ok:
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            return proc.stderr
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def test_install_imports_and_runs_scripts(self):
        lock = self.lock(["app-main"], "app")
        to = os.path.join(self.dir, "packages")
        out = self.install(lock, to)
        self.assertEqual(sorted(d["name"] for d in out["dists"]), ["app-cli", "app-lib", "app-main"])
        self.assertTrue(all(d["state"] == "installed" for d in out["dists"]), out)
        for d in out["dists"]:
            self.assertEqual(d["path"], os.path.join(to, f"{d['name']}=={d['version']}", "files"))
        self.assertTrue(os.path.isdir(os.path.join(to, "app-lib==1.2", "files", "app_lib-1.2.dist-info")))
        proc = python_with(to, "import app_main, app_lib, app_cli; print(app_main.VERSION, app_lib.VERSION)")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "'1.0' '1.2'".replace("'", ""))
        script = os.path.join(to, "app-cli==0.3", "files", "bin", "app-hello")
        with open(script) as f:
            self.assertEqual(f.readline(), "#!/usr/bin/python3\n")
        self.assertTrue(os.access(script, os.X_OK))
        path = ":".join(sorted(glob.glob(os.path.join(to, "*", "files"))))
        proc = subprocess.run([script], env={"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
                              capture_output=True, text=True, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout), (0, "hello from app-cli\n"), proc.stderr)

        self.server.clear_access_log()
        again = self.install(lock, to)
        self.assertTrue(all(d["state"] == "present" for d in again["dists"]), again)
        self.assertEqual(again["downloaded_bytes"], 0)
        self.assertEqual(self.server.requests(), [])

    def test_concurrent_installs_of_one_lock(self):
        lock = self.lock(["app-main"], "concurrent")
        to = os.path.join(self.dir, "concurrent")
        procs = [subprocess.Popen([harness.LAZYFS, "pkg", "install", "-q", lock, "--to", to],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(sorted(os.listdir(to)), ["app-cli==0.3", "app-lib==1.2", "app-main==1.0"])
        for d in os.listdir(to):
            self.assertEqual(os.listdir(os.path.join(to, d)), ["files"])  # no .tmp- trees, no .part files
        proc = python_with(to, "import app_main, app_lib, app_cli")
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_bad_wheels_install_nothing(self):
        lock = self.lock(["app-lib", "tampered"], "tampered")
        with open(self.tampered, "r+b") as f:  # the index now serves other bytes than it listed
            data = f.read()
            f.seek(0)
            f.write(data[:-1] + bytes([data[-1] ^ 1]))
        to = os.path.join(self.dir, "bad")
        err = self.install(lock, to, ok=False)
        self.assertIn("tampered-1.0-py3-none-any.whl", err)
        self.assertIn("the lock says sha256:", err)
        self.assertFalse(os.path.exists(os.path.join(to, "tampered==1.0", "files")))
        self.assertTrue(os.path.isdir(os.path.join(to, "app-lib==1.2", "files")))  # installed before it

        err = self.install(self.lock(["escapes"], "escapes"), to, ok=False)
        self.assertIn("escapes-1.0-py3-none-any.whl", err)
        self.assertIn("'../outside.py' has a '..' part", err)
        self.assertFalse(os.path.exists(os.path.join(to, "escapes==1.0", "files")))
        self.assertFalse(os.path.exists(os.path.join(to, "escapes==1.0", "outside.py")))
        self.assertEqual(glob.glob(os.path.join(to, ".download-*")), [])


class CompileInImageTest(IndexTestCase):
    PREFIX = "lazyfs-it-install-compile."
    TOOLS = ("nginx", "crun", "mmdebstrap")

    @classmethod
    def fill_index(cls, index):
        index.add_wheel("app-lib", "1.2", extra_members=[("app_lib/util.py", b"def twice(x):\n    return 2 * x\n")])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import test_run  # noqa: E402  (its images and cgroup set-up)
        test_run.prepare_cgroups()
        cls.base_ref, cls.py_ref = test_run.build_images(harness.LAZYFS)

    def lock(self):
        return self.resolve_lock(["app-lib"], "app")

    def test_pyc_from_the_image_interpreter(self):
        to = os.path.join(self.dir, "compiled")
        proc = harness.run_lazyfs(["pkg", "install", "-q", self.lock(), "--to", to, "--compile-in", self.py_ref],
                                  timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        files = os.path.join(to, "app-lib==1.2", "files")
        pycs = sorted(os.listdir(os.path.join(files, "app_lib", "__pycache__")))
        self.assertEqual(pycs, ["__init__.cpython-311.pyc", "util.cpython-311.pyc"])
        with open(os.path.join(files, "app_lib", "__pycache__", "util.cpython-311.pyc"), "rb") as f:
            header = f.read(8)
        self.assertEqual(int.from_bytes(header[4:8], "little"), 1)  # PEP 552: hash-based, unchecked
        with open(os.path.join(files, "app_lib-1.2.dist-info", "RECORD")) as f:
            record = f.read()
        self.assertIn("app_lib/__pycache__/util.cpython-311.pyc,sha256=", record)
        before = {os.path.join(d, n) for d, _, names in os.walk(files) for n in names}
        proc = python_with(to, "import app_lib.util; print(app_lib.util.twice(21), app_lib.util.__cached__)")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(proc.stdout.startswith("42 "), proc.stdout)
        self.assertEqual({os.path.join(d, n) for d, _, names in os.walk(files) for n in names}, before)

    def test_image_without_python(self):
        to = os.path.join(self.dir, "nopython")
        proc = harness.run_lazyfs(["pkg", "install", "-q", self.lock(), "--to", to, "--compile-in", self.base_ref],
                                  timeout=600)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("has no python3", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(to, "app-lib==1.2", "files")))


class DebianWheelsInstallTest(IndexTestCase):
    PREFIX = "lazyfs-it-install-debian."
    TOOLS = ("nginx", "apt-get")

    @classmethod
    def fill_index(cls, index):
        index.add_wheel_files(debian_wheels(DEBIAN_ROOTS))

    def test_compiled_extension_imports(self):
        lock = self.resolve_lock(["jinja2", "markupsafe", "rich"], "jinja", host_python_version())
        to = os.path.join(self.dir, "packages")
        proc = harness.run_lazyfs(["pkg", "install", "-q", lock, "--to", to], timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        native = glob.glob(os.path.join(to, "markupsafe==*", "files", "markupsafe", "_speedups*.so"))
        self.assertEqual(len(native), 1, os.listdir(to))
        code = ("import jinja2, markupsafe, markupsafe._speedups, rich; "
                "print(jinja2.Template('{{ x }}!').render(x=markupsafe.escape('<b>')), markupsafe._speedups.__file__)")
        proc = python_with(to, code)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(proc.stdout.startswith("&lt;b&gt;! " + to), proc.stdout)


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
