#!/usr/bin/env python3
"""Integration tests of `lazyfs run` and `lazyfs ps` with real Debian images and Debian's crun.

    python3 test_run.py --lazyfs build/tools/lazyfs

Images come from debian_image.py (mmdebstrap minbase + packages, converted to eStargz, cached under
$LAZYFS_TEST_CACHE). Each test checks what a user would: output, exit codes, signals, limits, that
writes stay in the sandbox, that concurrent sandboxes share one lazy mount, that a kept image mount
lingers, is reused and ends itself, and that nothing is left mounted or on disk afterwards (tearDown
asserts it for every test). Runs pass --keep-mount 0 unless a test is about the lingering mount.

Nothing sleeps to synchronise: readiness is polled against a deadline (harness.wait_for) and every
process has a timeout.
"""

import ast
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_image  # noqa: E402
import harness  # noqa: E402
import imagebuilder  # noqa: E402
import registry_harness  # noqa: E402

RUN_TIMEOUT = 180       # one `lazyfs run`, mount included
IMAGES_DIR = "/run/lazyfs/images"
SANDBOX_TMP = "/var/tmp"


def prepare_cgroups():
    """crun refuses a hybrid cgroup host whose v2 hierarchy holds controllers ("cgroups in hybrid mode
    not supported, drop all controllers from cgroupv2"). Mount each such controller as its own v1
    hierarchy, the layout systemd's hybrid mode uses. A pure v1 or v2 host is left alone."""
    unified = "/sys/fs/cgroup/unified/cgroup.controllers"
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers") or not os.path.exists(unified):
        return
    with open(unified) as f:
        controllers = f.read().split()
    for c in controllers:
        target = os.path.join("/sys/fs/cgroup", c)
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", c, "cgroup", target], check=True, capture_output=True)


def build_images(lazyfs):
    """The test images: (minbase ref, python ref)."""
    base_layout, base_tag = debian_image.build_image("run-minbase", [], {"Cmd": ["/bin/sh"]}, lazyfs=lazyfs)
    py_layout, py_tag = debian_image.build_image(
        "run-python", ["python3-minimal"],
        {"Cmd": ["python3"], "WorkingDir": "/srv", "Env": debian_image.DEFAULT_ENV + ["PYTHONUNBUFFERED=1"],
         "ExposedPorts": {"8000/tcp": {}}}, lazyfs=lazyfs)
    return f"oci:{base_layout}:{base_tag}", f"oci:{py_layout}:{py_tag}"


def lazyfs_mounts():
    """Mounts `lazyfs run` makes: image mounts and sandbox overlays."""
    return [mp for mp, _, _ in harness.mounts()
            if mp.startswith(IMAGES_DIR + "/") or mp.startswith(SANDBOX_TMP + "/lazyfs-run.")]


def sandbox_dirs():
    return [n for n in os.listdir(SANDBOX_TMP) if n.startswith("lazyfs-run.")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line(proc, timeout):
    """One line of `proc`'s stdout within `timeout` seconds, or AssertionError."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise AssertionError(f"no output line within {timeout}s (got {line!r})")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise AssertionError(f"stdout closed (got {line!r}); exit {proc.poll()}")
        line += chunk
    return line.decode()


class RunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        for tool in ("crun", "mmdebstrap"):
            if not harness.shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        prepare_cgroups()
        cls.base_ref, cls.py_ref = build_images(harness.LAZYFS)
        cls.root = tempfile.mkdtemp(prefix="lazyfs-run-it.")
        cls.cache = os.path.join(cls.root, "cache")
        cls.log = os.path.join(cls.root, "lazyfs.log")
        os.makedirs(cls.cache)

    @classmethod
    def tearDownClass(cls):
        harness.shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream and not stream.closed:
                    stream.close()
        # Every test leaves nothing behind: no mount, no sandbox dir, no record.
        harness.wait_for(lambda: not lazyfs_mounts(), 30, f"lazyfs mounts to go: {lazyfs_mounts()}")
        self.assertEqual(sandbox_dirs(), [])
        self.assertEqual(self.ps(), [])

    def args(self, *extra, keep=0):
        return [harness.LAZYFS, "run", "--cache-dir", self.cache, "--log-file", self.log, "--keep-mount", str(keep),
                *extra]

    def run_lazyfs(self, *extra, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, keep=0):
        return subprocess.run(self.args(*extra, keep=keep), stdin=stdin, capture_output=True, text=True,
                              errors="replace", timeout=timeout)

    def start(self, *extra, keep=0):
        p = subprocess.Popen(self.args(*extra, keep=keep), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def ps(self):
        out = subprocess.run([harness.LAZYFS, "ps", "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def image_mounts(self):
        out = subprocess.run([harness.LAZYFS, "ps", "--mounts", "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return [m for m in json.loads(out.stdout) if m.get("mountpoint", "").startswith(IMAGES_DIR + "/")]

    def mount_count(self):
        """How many times a daemon logged mounting an image (the log is shared by the whole class)."""
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if " info: mounted " in line)

    def log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def check(self, proc, code=0):
        self.assertEqual(proc.returncode, code,
                         f"stdout: {proc.stdout}\nstderr: {proc.stderr}\nmount log:\n{self.log_tail()}")

    # -----------------------------------------------------------------------------------------------

    def test_echo_hello(self):
        out = self.run_lazyfs(self.base_ref, "--", "echo", "hello")
        self.check(out)
        self.assertEqual(out.stdout, "hello\n")

    def test_exit_code_stdout_stderr_pass_through(self):
        out = self.run_lazyfs(self.base_ref, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
        self.check(out, 7)
        self.assertEqual(out.stdout, "out\n")
        self.assertIn("err\n", out.stderr)
        killed = self.run_lazyfs(self.base_ref, "--", "sh", "-c", "kill -KILL $$")
        self.check(killed, 128 + signal.SIGKILL)

    def test_image_cmd_is_the_default(self):
        out = self.run_lazyfs(self.base_ref)
        self.check(out)  # /bin/sh with stdin at EOF exits 0

    def test_python_program_with_env_workdir_user(self):
        # python3-minimal has no json module: print a dict literal.
        program = ("import os, sys; print(repr({'cwd': os.getcwd(), 'foo': os.environ.get('FOO'),"
                   " 'uid': os.getuid(), 'gid': os.getgid(), 'version': list(sys.version_info[:2])}))")
        out = self.run_lazyfs("--env", "FOO=bar", self.py_ref, "--", "python3", "-c", program)
        self.check(out)
        got = ast.literal_eval(out.stdout)
        self.assertEqual(got, {"cwd": "/srv", "foo": "bar", "uid": 0, "gid": 0, "version": [3, 11]})
        out = self.run_lazyfs("--workdir", "/tmp", "--user", "nobody", self.py_ref, "--", "python3", "-c", program)
        self.check(out)
        got = ast.literal_eval(out.stdout)
        self.assertEqual((got["cwd"], got["uid"], got["gid"]), ("/tmp", 65534, 65534))

    def test_server_becomes_ready_and_stops_on_sigterm(self):
        port = free_port()
        # python3-minimal has no http.server; a few lines of socket code answer HTTP/1.0 just as well.
        server = ("import socket\n"
                  "s = socket.socket()\n"
                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  f"s.bind(('127.0.0.1', {port}))\n"
                  "s.listen(16)\n"
                  "while True:\n"
                  "    c, _ = s.accept()\n"
                  "    c.recv(65536)\n"
                  "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n"
                  "    c.close()\n")
        proc = self.start("--network", "host", self.py_ref, "--", "python3", "-c", server)

        def answers():
            if proc.poll() is not None:
                raise AssertionError(f"lazyfs run exited {proc.returncode}: {proc.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        harness.wait_for(answers, RUN_TIMEOUT, f"the server on port {port}", interval=0.05)
        sandboxes = self.ps()
        self.assertEqual(len(sandboxes), 1)
        self.assertEqual(sandboxes[0]["pid"], proc.pid)
        self.assertEqual(sandboxes[0]["command"][:2], ["python3", "-c"])
        self.assertTrue(os.path.isdir(sandboxes[0]["dir"]))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        self.assertEqual(rc, 128 + signal.SIGTERM, proc.stderr.read().decode())
        self.assertFalse(os.path.exists(sandboxes[0]["dir"]))
        with self.assertRaises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)

    def test_network_none_has_only_loopback(self):
        out = self.run_lazyfs(self.base_ref, "--", "sh", "-c", "ls /sys/class/net")
        self.check(out)
        self.assertEqual(out.stdout.split(), ["lo"])

    def test_writes_reach_neither_image_nor_cache(self):
        marker = "lazyfs-sandbox-write-7f3a9c"
        layout = self.base_ref.split(":", 1)[1].rsplit(":", 1)[0]
        before = {n: os.path.getsize(os.path.join(layout, "blobs", "sha256", n))
                  for n in os.listdir(os.path.join(layout, "blobs", "sha256"))}
        out = self.run_lazyfs(self.base_ref, "--", "sh", "-c",
                              f"echo {marker} > /etc/written && rm /etc/os-release && echo {marker} >> /etc/hostname"
                              " && cat /etc/written && test ! -e /etc/os-release")
        self.check(out)
        self.assertEqual(out.stdout, marker + "\n")
        again = self.run_lazyfs(self.base_ref, "--", "sh", "-c",
                                "test ! -e /etc/written && test -s /etc/os-release && ! grep -q lazyfs /etc/hostname")
        self.check(again)
        after = {n: os.path.getsize(os.path.join(layout, "blobs", "sha256", n))
                 for n in os.listdir(os.path.join(layout, "blobs", "sha256"))}
        self.assertEqual(before, after)
        for dirpath, _, names in os.walk(self.cache):
            for name in names:
                with open(os.path.join(dirpath, name), "rb") as f:
                    self.assertNotIn(marker.encode(), f.read(), f"the write reached the cache ({name})")

    def test_memory_hog_is_killed_and_says_so(self):
        out = self.run_lazyfs("--memory", "64M", self.py_ref, "--", "python3", "-c",
                              "b = bytearray(512 << 20); print('survived')")
        self.check(out, 128 + signal.SIGKILL)
        self.assertNotIn("survived", out.stdout)
        self.assertIn("killed: out of memory (limit 64M)", out.stderr)
        fine = self.run_lazyfs("--memory", "64M", self.py_ref, "--", "python3", "-c", "b = bytearray(8 << 20)")
        self.check(fine)

    def test_cpu_and_pids_limits_apply(self):
        out = self.run_lazyfs("--pids", "3", self.base_ref, "--", "sh", "-c",
                              "sleep 5 & sleep 5 & sleep 5 & wait; echo done")
        # tini, sh and one sleep make three: the second sleep cannot be forked.
        self.assertIn("fork", out.stderr.lower(), f"a fourth process was allowed under --pids 3: {out}")
        cpu = self.run_lazyfs("--cpus", "0.5", self.base_ref, "--", "sh", "-c",
                              "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        self.check(cpu)
        self.assertIn("50000", cpu.stdout)

    def test_concurrent_sandboxes_share_one_mount(self):
        procs = [self.start(self.base_ref, "--", "sh", "-c", "echo ready; read line; echo got $line") for _ in range(3)]
        for p in procs:
            self.assertEqual(read_line(p, RUN_TIMEOUT), "ready\n")
        sandboxes = self.ps()
        self.assertEqual(sorted(s["pid"] for s in sandboxes), sorted(p.pid for p in procs))
        self.assertEqual(len({s["manifest_digest"] for s in sandboxes}), 1)
        digest = sandboxes[0]["manifest_digest"].split(":", 1)[1]
        image_mounts = [mp for mp, fstype, _ in harness.mounts() if mp.startswith(IMAGES_DIR) and fstype.startswith("fuse")]
        self.assertEqual(image_mounts, [f"{IMAGES_DIR}/{digest}/rootfs"])
        overlays = [mp for mp, fstype, _ in harness.mounts() if fstype == "overlay" and "lazyfs-run." in mp]
        self.assertEqual(len(overlays), 3)
        # The first to exit leaves the mount to the others.
        procs[0].stdin.write(b"one\n")
        procs[0].stdin.close()
        self.assertEqual(procs[0].wait(timeout=60), 0)
        self.assertEqual(procs[0].stdout.read(), b"got one\n")
        self.assertTrue(harness.is_mounted(f"{IMAGES_DIR}/{digest}/rootfs"))
        for p in procs[1:]:
            p.stdin.close()
            self.assertEqual(p.wait(timeout=60), 0)
        self.assertFalse(harness.is_mounted(f"{IMAGES_DIR}/{digest}/rootfs"))

    def test_killed_run_is_cleaned_up_by_the_next(self):
        proc = self.start(self.base_ref, "--", "sh", "-c", "echo ready; read line")
        self.assertEqual(read_line(proc, RUN_TIMEOUT), "ready\n")
        [record] = self.ps()
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait(timeout=30)
        self.assertTrue(os.path.isdir(record["dir"]))
        out = self.run_lazyfs(self.base_ref, "--", "echo", "after")
        self.check(out)
        self.assertEqual(out.stdout, "after\n")
        self.assertFalse(os.path.exists(record["dir"]))
        crun = subprocess.run(["crun", "list"], capture_output=True, text=True, timeout=30)
        self.assertNotIn(record["id"], crun.stdout)

    def test_kept_mount_lingers_is_reused_and_ends_itself(self):
        first = self.run_lazyfs(self.base_ref, "--", "echo", "one", keep=4)
        self.check(first)
        self.assertEqual(first.stdout, "one\n")
        [m] = self.image_mounts()
        self.assertTrue(harness.is_mounted(m["mountpoint"]))
        self.assertEqual(m["idle"]["timeout_s"], 4)

        def idle_state():  # the daemon counts its users when inotify wakes it, just after a run comes or goes
            [state] = self.image_mounts()
            return (state["pid"], state["idle"]["users"], state["idle"]["idle_s"] is not None)

        harness.wait_for(lambda: idle_state() == (m["pid"], 0, True), 10, "the daemon to count no user")
        mounts_before = self.mount_count()
        # The second start reuses the lingering mount: same daemon, no new mount logged.
        second = self.run_lazyfs(self.base_ref, "--", "echo", "two", keep=4)
        self.check(second)
        self.assertEqual(second.stdout, "two\n")
        [again] = self.image_mounts()
        self.assertEqual(again["pid"], m["pid"])
        self.assertEqual(self.mount_count(), mounts_before)
        ps = subprocess.run([harness.LAZYFS, "ps"], capture_output=True, text=True, timeout=30)
        self.assertIn("unmounts in", ps.stdout)
        # While a sandbox runs, the mount is in use and does not expire, however long it takes.
        proc = self.start(self.base_ref, "--", "sh", "-c", "echo ready; read line; echo got $line", keep=4)
        self.assertEqual(read_line(proc, RUN_TIMEOUT), "ready\n")
        harness.wait_for(lambda: idle_state() == (m["pid"], 1, False), 10, "the daemon to count the running sandbox")
        proc.stdin.write(b"x\n")
        proc.stdin.close()
        self.assertEqual(proc.wait(timeout=60), 0)
        # Then, idle, it goes by itself after the timeout, and its daemon exits.
        harness.wait_for(lambda: not self.image_mounts() and not harness.is_mounted(m["mountpoint"]), 4 + 20,
                         "the idle image mount to go")
        harness.wait_for(lambda: not harness.pid_alive(m["pid"]), 20, "the mount daemon to exit")

    def test_keep_mount_0_ends_a_kept_mount(self):
        self.check(self.run_lazyfs(self.base_ref, "--", "true", keep=600))
        [m] = self.image_mounts()
        self.check(self.run_lazyfs(self.base_ref, "--", "true", keep=0))
        self.assertFalse(harness.is_mounted(m["mountpoint"]))
        self.assertFalse(harness.pid_alive(m["pid"]))  # lazyfs run waited for the daemon

    def test_sigterm_to_a_lingering_daemon_unmounts(self):
        self.check(self.run_lazyfs(self.base_ref, "--", "true", keep=600))
        [m] = self.image_mounts()
        os.kill(m["pid"], signal.SIGTERM)
        harness.wait_for(lambda: not harness.pid_alive(m["pid"]), 30, "the mount daemon to exit on SIGTERM")
        self.assertFalse(harness.is_mounted(m["mountpoint"]))
        out = self.run_lazyfs(self.base_ref, "--", "echo", "after")
        self.check(out)
        self.assertEqual(out.stdout, "after\n")

    def test_dead_lingering_daemon_is_replaced(self):
        self.check(self.run_lazyfs(self.base_ref, "--", "true", keep=600))
        [m] = self.image_mounts()
        os.kill(m["pid"], signal.SIGKILL)
        harness.wait_for(lambda: not harness.pid_alive(m["pid"]), 30, "the killed daemon to go")
        out = self.run_lazyfs(self.base_ref, "--", "echo", "replaced")
        self.check(out)
        self.assertEqual(out.stdout, "replaced\n")

    def test_starts_racing_the_idle_timeout_all_succeed(self):
        # Each run leaves the mount with a 0.2 s idle timeout; the next one starts around when the daemon
        # decides to go. The image lock makes every start find a live mount or none, never a dying one.
        for i in range(10):
            out = self.run_lazyfs(self.base_ref, "--", "echo", str(i), keep=0.2)
            self.check(out)
            self.assertEqual(out.stdout, f"{i}\n")
            time.sleep(0.02 * i)  # not synchronisation: varies where in the idle window the next start falls
        for m in self.image_mounts():
            harness.wait_for(lambda: not harness.pid_alive(m["pid"]), 30, "the last daemon to exit")

    def test_registry_image_with_trace_and_prefetch(self):
        layout = self.base_ref.split(":", 1)[1].rsplit(":", 1)[0]
        tag = self.base_ref.rsplit(":", 1)[1]
        trace = os.path.join(self.root, "run.trace")
        with registry_harness.Registry() as reg:
            ref = f"docker://{reg.host}/run-test:v1"
            push = harness.run_lazyfs(["push", "-q", "--insecure-registry", reg.host, f"oci:{layout}:{tag}", ref])
            self.assertEqual(push.returncode, 0, push.stderr)
            no_flag = self.run_lazyfs("--retries", "0", ref, "--", "true")
            self.check(no_flag, 125)  # plain http only for registries marked insecure
            out = self.run_lazyfs("--insecure-registry", reg.host, "--trace", trace, ref, "--", "cat", "/etc/debian_version")
            self.check(out)
            self.assertRegex(out.stdout, r"^\d+")
            # --keep-mount 0: the run waited for the daemon, so the trace is complete.
            shown = harness.run_lazyfs(["trace", "show", trace])
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("/etc/debian_version", shown.stdout)
            again = self.run_lazyfs("--insecure-registry", reg.host, "--prefetch", trace, ref, "--", "true")
            self.check(again)

    def hostile_image(self, name, entries):
        layout, tag = self.base_ref[len("oci:"):].rsplit(":", 1)
        out = os.path.join(self.root, name)
        harness.shutil.rmtree(out, ignore_errors=True)
        debian_image.with_layer(layout, tag, entries, out)
        return f"oci:{out}:{tag}"

    def test_user_database_is_read_inside_the_image(self):
        # An absolute symlink is the image's own path: it must not hand `-u` a host file.
        with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="lazyfs-host-passwd.", delete=False) as f:
            f.write("evil:x:4242:4343::/:/bin/sh\n")
        try:
            ref = self.hostile_image("passwd-symlink", [imagebuilder.symlink("etc/passwd", f.name),
                                                        imagebuilder.symlink("etc/group", f.name)])
            out = self.run_lazyfs("--user", "evil", ref, "--", "id", "-u")
            self.check(out, 125)
            self.assertNotIn("4242", out.stdout)
            self.assertIn("evil is not in the image's /etc/passwd", out.stderr)
            out = self.run_lazyfs("--user", "0", ref, "--", "id", "-u")  # numeric needs no database
            self.check(out)
        finally:
            os.unlink(f.name)

    def test_user_database_fifo_fails_at_once(self):
        # A FIFO would block a plain open() forever, before signals are watched.
        ref = self.hostile_image("passwd-fifo", [imagebuilder.fifo("etc/passwd")])
        out = self.run_lazyfs("--user", "nobody", ref, "--", "true", timeout=60)
        self.check(out, 125)
        self.assertIn("/etc/passwd", out.stderr)
        self.assertIn("not a regular file", out.stderr)

    def test_setuid_files_raise_no_privileges_unless_allowed(self):
        with open("/usr/bin/id", "rb") as f:  # the host is Debian 12, as the image: same coreutils
            id_bytes = f.read()
        ref = self.hostile_image("setuid", [imagebuilder.regular("usr/local/bin/suid-id", id_bytes,
                                                                         mode=0o4755)])
        out = self.run_lazyfs("--user", "nobody", ref, "--", "sh", "-c",
                              "suid-id -u; grep NoNewPrivs /proc/self/status")
        self.check(out)
        self.assertEqual(out.stdout.split(), ["65534", "NoNewPrivs:", "1"])
        out = self.run_lazyfs("--allow-setuid", "--user", "nobody", ref, "--", "sh", "-c",
                              "suid-id -u; grep NoNewPrivs /proc/self/status")
        self.check(out)
        self.assertEqual(out.stdout.split(), ["0", "NoNewPrivs:", "0"])

    def test_bad_image_and_bad_options_fail_with_125(self):
        out = self.run_lazyfs("oci:/nonexistent/layout:tag", "--", "true")
        self.check(out, 125)
        out = self.run_lazyfs("--memory", "lots", self.base_ref, "--", "true")
        self.check(out, 125)
        self.assertIn("lots", out.stderr)


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
