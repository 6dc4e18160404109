"""Shared plumbing for the lazyfs integration tests: CLI arguments, mounts, references, bounded reads.

Every test program is a `unittest` program run as root, ending in `harness.main()` (skips exit 77, or fail
under $CI):

    python3 test_x.py --lazyfs /path/to/lazyfs [unittest args]

Images come from imagebuilder.py (cached under $LAZYFS_TEST_CACHE, default /var/cache/lazyfs-tests);
reference trees come from `umoci unpack`, cached next to the images (keyed by manifest digest). Each
mount gets a fresh temp dir holding the mountpoint, `--cache-dir` and `--log-file`. `MountSet` unmounts
everything it mounted (fusermount3 -u, then `umount -l`) and kills the daemons it started (found by
their mountpoint argument, ended by pid) — in tearDown, whatever the test did.

Nothing sleeps to synchronise: conditions are polled against a deadline (`wait_for`), and every read of
a possibly-broken file happens in a child process with a timeout, so a hang fails the test instead of
hanging CI.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagebuilder  # noqa: E402

MOUNT_TIMEOUT = 120   # seconds for `lazyfs mount` to return (it returns once the mount is live)
READ_TIMEOUT = 60     # seconds for one bounded read of a possibly-broken file
LAZYFS = None         # set by parse_args()


def parse_args():
    """Take `--lazyfs PATH` out of sys.argv (unittest gets the rest). Falls back to $LAZYFS."""
    global LAZYFS
    argv, rest, i = sys.argv, [sys.argv[0]], 1
    while i < len(argv):
        if argv[i] == "--lazyfs" and i + 1 < len(argv):
            LAZYFS, i = argv[i + 1], i + 2
        elif argv[i].startswith("--lazyfs="):
            LAZYFS, i = argv[i].split("=", 1)[1], i + 1
        else:
            rest.append(argv[i])
            i += 1
    LAZYFS = LAZYFS or os.environ.get("LAZYFS")
    sys.argv[:] = rest
    return LAZYFS


def require_environment():
    """Skip (with the reason) when the test cannot run here."""
    if not LAZYFS:
        raise unittest.SkipTest("no --lazyfs PATH given")
    if not os.access(LAZYFS, os.X_OK):
        raise AssertionError(f"--lazyfs {LAZYFS} is not an executable")
    if os.geteuid() != 0:
        raise unittest.SkipTest("integration tests need root (umoci unpack, mknod, chown)")
    for tool in ("umoci", "fusermount3"):
        if not shutil.which(tool):
            raise unittest.SkipTest(f"{tool} not installed")
    if not os.path.exists("/dev/fuse"):
        raise unittest.SkipTest("/dev/fuse missing")


SKIPPED_EXIT = 77  # meson's "skipped"


def ci_is_set():
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def main(argv=None):
    """unittest.main for every test program, with skips that cannot pass for a run: exits 77 when every
    test was skipped (meson shows SKIP, not OK), and 1 when any test was skipped while $CI is set (CI
    installs everything, so a skip there is a broken install step). Otherwise 0 on success, 1 on failure."""
    result = unittest.main(argv=argv, verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and ci_is_set():
        print(f"FAIL: {len(result.skipped)} skipped with CI set; a skip in CI means an install step is broken:",
              file=sys.stderr)
        for test, reason in result.skipped:
            print(f"  {test}: {reason}", file=sys.stderr)
        sys.exit(1)
    # A skip raised in setUpClass is recorded against a placeholder, not a TestCase, and is not counted as run.
    ran = result.testsRun - sum(1 for test, _ in result.skipped if isinstance(test, unittest.TestCase))
    sys.exit(SKIPPED_EXIT if result.skipped and ran == 0 else 0)


def stop_process(process, timeout=10):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; reaps it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition, timeout, what, interval=0.02):
    """Poll `condition()` until true or `timeout` seconds pass; raises AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _unescape_mountinfo(field):
    out, i = "", 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out, i = out + chr(int(field[i + 1:i + 4], 8)), i + 4
        else:
            out, i = out + field[i], i + 1
    return out


def mounts():
    """Mount points and fs types from /proc/self/mountinfo: list of (mountpoint, fstype, source)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((_unescape_mountinfo(fields[4]), fields[sep + 1], fields[sep + 2]))
    return out


def is_mounted(path):
    path = os.path.realpath(path)
    return any(mp == path for mp, _, _ in mounts())


def fuse_mount_count(path):
    path = os.path.realpath(path)
    return sum(1 for mp, fstype, _ in mounts() if mp == path and fstype.startswith("fuse"))


def daemon_pids(mountpoint):
    """Pids of processes whose command line has `mountpoint` as an argument and runs LAZYFS."""
    target, exe = os.path.realpath(mountpoint), os.path.basename(LAZYFS or "lazyfs")
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if args and os.path.basename(args[0]) == exe and any(
                os.path.realpath(a) == target for a in args[1:] if a.startswith("/")):
            pids.append(int(entry))
    return pids


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def run_lazyfs(args, timeout=MOUNT_TIMEOUT):
    return subprocess.run([LAZYFS] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


class Mount:
    """One `lazyfs mount`: its mountpoint, cache dir, log file and the CompletedProcess."""

    def __init__(self, ref, workdir, cache_dir=None, extra=()):
        self.ref, self.workdir = ref, workdir
        self.mountpoint = os.path.join(workdir, "mnt")
        self.cache_dir = cache_dir or os.path.join(workdir, "cache")
        self.log_file = os.path.join(workdir, "lazyfs.log")
        os.makedirs(self.mountpoint, exist_ok=True)
        os.makedirs(self.cache_dir, exist_ok=True)
        # --log-level is a global option of this CLI (CLI11 rejects it after `mount`).
        self.proc = run_lazyfs(["--log-level", "debug", "mount", "--cache-dir", self.cache_dir,
                                "--log-file", self.log_file, *extra, *([ref] if ref else []), self.mountpoint])
        self.pids = daemon_pids(self.mountpoint) if self.proc.returncode == 0 else []

    @property
    def ok(self):
        return self.proc.returncode == 0

    def describe(self):
        return (f"`lazyfs mount {self.ref} {self.mountpoint}` exit {self.proc.returncode}\n"
                f"stdout: {self.proc.stdout.strip()}\nstderr: {self.proc.stderr.strip()}\n"
                f"log tail:\n{self.log_tail()}")

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log().splitlines()[-lines:])

    def daemon_alive(self):
        return bool(self.pids) and all(pid_alive(p) for p in self.pids)

    def path(self, rel):
        return os.path.join(self.mountpoint, rel)


def unmount(mountpoint, timeout=30):
    """Unmount (fusermount3 -u, falling back to umount -l) and wait until the kernel agrees."""
    if not fuse_mount_count(mountpoint):
        return True
    for cmd in (["fusermount3", "-u", mountpoint], ["umount", "-l", mountpoint]):
        subprocess.run(cmd, capture_output=True, timeout=timeout)
        try:
            wait_for(lambda: not fuse_mount_count(mountpoint), 5, f"{mountpoint} to unmount")
            return True
        except AssertionError:
            continue
    return False


def kill_daemons(pids, timeout=10):
    """SIGTERM, then SIGKILL, the given daemon pids (only ones this harness started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = [p for p in pids if pid_alive(p)]
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            wait_for(lambda: not any(pid_alive(p) for p in live), timeout, "lazyfs daemons to exit")
            return
        except AssertionError:
            continue


class MountSet:
    """Mounts made by one test; `cleanup()` (from tearDown) removes all of them and their temp dirs."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="lazyfs-it.")
        self.mounts = []

    def mount(self, ref, name=None, cache_dir=None, extra=()):
        workdir = os.path.join(self.root, name or f"m{len(self.mounts)}")
        m = Mount(ref, workdir, cache_dir=cache_dir, extra=extra)
        self.mounts.append(m)
        return m

    def tempdir(self, name):
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def cleanup(self):
        leftovers = []
        for m in self.mounts:
            pids = set(m.pids) | set(daemon_pids(m.mountpoint))
            if not unmount(m.mountpoint):
                leftovers.append(m.mountpoint)
            kill_daemons(pids)
        if leftovers:  # never rmtree through a live mount
            raise AssertionError(f"could not unmount {leftovers}")
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Bounded reads in a child process.

_READER = r"""
import hashlib, json, os, sys
path, offset, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    fd = os.open(path, os.O_RDONLY)
    try:
        h, n, pos = hashlib.sha256(), 0, offset
        head = b""
        while length < 0 or n < length:
            want = 1 << 20 if length < 0 else min(1 << 20, length - n)
            buf = os.pread(fd, want, pos)
            if not buf:
                break
            if len(head) < 64:
                head += buf[:64 - len(head)]
            h.update(buf); n += len(buf); pos += len(buf)
    finally:
        os.close(fd)
    print(json.dumps({"ok": True, "sha256": h.hexdigest(), "size": n, "head": head.hex()}))
except OSError as e:
    print(json.dumps({"ok": False, "errno": e.errno, "error": str(e)}))
"""


def bounded_read(path, offset=0, length=-1, timeout=READ_TIMEOUT):
    """Read `path` in a child process. Returns a dict: ok, sha256/size/head, or errno/error; or
    {"ok": False, "timeout": True} when the read did not finish within `timeout` seconds."""
    try:
        proc = subprocess.run([sys.executable, "-c", _READER, path, str(offset), str(length)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "timeout": True, "errno": None, "error": f"read hung > {timeout}s"}
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"ok": False, "errno": None, "error": f"reader crashed: {proc.stderr.strip()}"}


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Images and references.

def manifest_digest(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get(imagebuilder.REF_NAME) == tag:
            return desc["digest"]
    raise KeyError(f"tag {tag} not in {layout}")


def umoci_unpack(layout, tag, bundle):
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", bundle],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"umoci unpack {layout}:{tag} failed: {proc.stderr.strip()}")
    return os.path.join(bundle, "rootfs")


def reference_rootfs(layout, tag):
    """`umoci unpack` of the image, cached by manifest digest; returns the rootfs path (read-only use)."""
    key = manifest_digest(layout, tag).split(":", 1)[1]
    root = imagebuilder.cached_dir("references", key,
                                   lambda tmp: umoci_unpack(layout, tag, os.path.join(tmp, "bundle")))
    return os.path.join(root, "bundle", "rootfs")


def dir_allocated_bytes(root):
    """Allocated bytes (st_blocks * 512) of all files under `root`: an LMDB map file's apparent size
    can be its whole map, so allocation is the honest measure of what the cache holds."""
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def layout_blob_bytes(layout):
    return sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", n))
               for n in os.listdir(os.path.join(layout, "blobs", "sha256")))
