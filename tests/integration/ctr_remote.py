#!/usr/bin/env python3
"""Convert OCI image layouts to eStargz with an independent producer: stargz-snapshotter's `ctr-remote`
(Debian package stargz-snapshotter) driving a private containerd (Debian package containerd).

    layout, tag = convert(src_layout, tag)        # cached; returns an OCI layout dir and its tag

What `convert` does, once per (source manifest digest, tool versions, options):
  1. starts `containerd` with a config in a fresh temp dir: its own root, state dir, grpc/ttrpc unix
     sockets under that dir (no TCP listener: debug and metrics addresses are empty), the CRI plugin
     disabled; waits (polling `ctr version` against a deadline) until it answers;
  2. `tar -C LAYOUT -cf src.tar .` and `ctr images import --no-unpack --base-name lazyfs.test/src`
     (the layout's ref name TAG becomes lazyfs.test/src:TAG; nothing is unpacked, so no snapshotter work);
  3. `ctr-remote images convert --estargz --oci [--estargz-chunk-size N] [--estargz-record-in FILE]
     SRC lazyfs.test/estargz:TAG` (a record file lists prioritized files, as `ctr-remote optimize`
     would have recorded them);
  4. `ctr images export --skip-manifest-json out.tar lazyfs.test/estargz:TAG`, unpacked into an OCI
     layout (its index.json names the image TAG via org.opencontainers.image.ref.name);
  5. stops containerd (SIGTERM, then SIGKILL after a deadline) and removes its temp dir.

Results live in $LAZYFS_TEST_CACHE/ctr-remote/<key>/oci (default cache /var/cache/lazyfs-tests), with a
provenance.json saying what made them. Python standard library only; run as root.

CLI: python3 ctr_remote.py LAYOUT TAG [--chunk-size N]   prints oci:DIR:TAG of the converted image.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagebuilder  # noqa: E402

# Bump when what this module does to produce a cached result changes (part of the cache key).
HELPER_VERSION = 1

NAMESPACE = "lazyfs"
SRC_NAME = "lazyfs.test/src"
DST_NAME = "lazyfs.test/estargz"
START_TIMEOUT = 60     # seconds for containerd to answer on its socket
STOP_TIMEOUT = 20      # seconds for containerd to exit after SIGTERM
COMMAND_TIMEOUT = 900  # seconds for one ctr / ctr-remote command (level-9 gzip of ~250 MiB takes ~30 s)
TOOLS = ("containerd", "ctr", "ctr-remote", "tar")


def unavailable_reason():
    """None when conversions can run here, else why not (for skipTest)."""
    if os.geteuid() != 0:
        return "containerd needs root"
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        return (f"{', '.join(missing)} not installed (Debian packages containerd and stargz-snapshotter "
                f"provide containerd, ctr and ctr-remote)")
    return None


def _version_line(tool):
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[0] if proc.returncode == 0 else f"{tool} ?"


def tool_versions():
    """Version lines of the producer's tools: part of the cache key and of the provenance record."""
    versions = {t: _version_line(t) for t in ("containerd", "ctr", "ctr-remote")}
    # `ctr-remote --version` prints the containerd client version it was built against; the Debian
    # package version pins the stargz-snapshotter code that writes the eStargz blobs.
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "stargz-snapshotter"],
                          capture_output=True, text=True, timeout=60) if shutil.which("dpkg-query") else None
    if proc is not None and proc.returncode == 0:
        versions["stargz-snapshotter"] = proc.stdout.strip()
    return versions


def _short_tempdir(prefix):
    """A temp dir whose paths stay well under the 108-byte unix socket path limit."""
    base = tempfile.gettempdir()
    if len(base) > 60:
        base = "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=base)


class Containerd:
    """A private containerd: `with Containerd() as c: c.ctr([...])`. Everything lives in one temp dir."""

    def __init__(self):
        self.dir = None
        self.proc = None
        self.log_file = None

    @property
    def socket(self):
        return os.path.join(self.dir, "c.sock")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _config(self):
        d = self.dir
        # TOML; the quoted paths contain no quotes or backslashes (mkdtemp names are [A-Za-z0-9_.]).
        return "\n".join([
            "version = 2",
            f'root = "{d}/root"',
            f'state = "{d}/state"',
            # No CRI (no Kubernetes plumbing, no streaming server port); snapshotters that need special
            # filesystems or kernel modules would only log errors.
            'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",',
            '  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs",',
            '  "io.containerd.snapshotter.v1.devmapper"]',
            "[grpc]",
            f'  address = "{d}/c.sock"',
            "[ttrpc]",
            f'  address = "{d}/c.sock.ttrpc"',
            "[debug]",
            '  address = ""',   # no debug socket
            "[metrics]",
            '  address = ""',   # no metrics TCP listener
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{d}/opt"',
            "",
        ])

    def start(self):
        self.dir = _short_tempdir("lazyfs-ctrd.")
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(self._config())
        self.log_file = os.path.join(self.dir, "containerd.log")
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", config], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited with {self.proc.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            if os.path.exists(self.socket):
                probe = subprocess.run(["ctr", "-a", self.socket, "version"], capture_output=True,
                                       text=True, timeout=30)
                if probe.returncode == 0:
                    return
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"containerd did not answer on {self.socket} within {START_TIMEOUT}s")
            time.sleep(0.05)  # polling interval, not synchronisation

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
                try:
                    self.proc.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, lines=20):
        try:
            with open(self.log_file, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def run(self, tool, args, timeout=COMMAND_TIMEOUT):
        """Runs `tool -a SOCK -n lazyfs ARGS`; raises RuntimeError with its output on failure."""
        cmd = [tool, "-a", self.socket, "-n", NAMESPACE, *args]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exit {proc.returncode}\nstdout: {proc.stdout.strip()}\n"
                               f"stderr: {proc.stderr.strip()}\ncontainerd log tail:\n{self.log_tail()}")
        return proc.stdout

    def ctr(self, args, **kw):
        return self.run("ctr", args, **kw)

    def ctr_remote(self, args, **kw):
        return self.run("ctr-remote", args, **kw)


def _run(cmd, timeout=COMMAND_TIMEOUT):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _manifest_digest(layout, tag):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get(imagebuilder.REF_NAME) == tag:
            return desc["digest"]
    raise KeyError(f"tag {tag} not in {layout}/index.json")


def convert_uncached(layout, tag, out_layout, chunk_size=None, prioritized=None):
    """Converts `layout:tag` with ctr-remote into the new OCI layout dir `out_layout`. `prioritized`: paths
    to put first in each layer that has them, before a .prefetch.landmark (passed as the record file
    `ctr-remote optimize --record-out` writes: one JSON object {"path": ...} per line)."""
    with Containerd() as ctrd:
        archive = os.path.join(ctrd.dir, "src.tar")
        _run(["tar", "-C", layout, "-cf", archive, "."])
        ctrd.ctr(["images", "import", "--no-unpack", "--base-name", SRC_NAME, archive])
        src, dst = f"{SRC_NAME}:{tag}", f"{DST_NAME}:{tag}"
        listed = ctrd.ctr(["images", "ls", "-q"]).split()
        if src not in listed:
            raise RuntimeError(f"import of {layout} made {listed}, not {src}")
        args = ["images", "convert", "--estargz", "--oci"]
        if chunk_size:
            args += ["--estargz-chunk-size", str(chunk_size)]
        if prioritized:
            record = os.path.join(ctrd.dir, "record.json")
            with open(record, "w") as f:
                f.writelines(json.dumps({"path": p}) + "\n" for p in prioritized)
            args += ["--estargz-record-in", record]
        ctrd.ctr_remote(args + [src, dst])
        exported = os.path.join(ctrd.dir, "out.tar")
        ctrd.ctr(["images", "export", "--skip-manifest-json", exported, dst])
        os.makedirs(out_layout)
        _run(["tar", "-C", out_layout, "--no-same-owner", "-xf", exported])
    _manifest_digest(out_layout, tag)  # the exported index names the image by its tag


def cache_key(layout, tag, chunk_size=None, prioritized=None):
    material = {"helper": HELPER_VERSION, "source_manifest": _manifest_digest(layout, tag), "tag": tag,
                "chunk_size": chunk_size, "prioritized": list(prioritized or []), "tools": tool_versions()}
    return hashlib.sha256(imagebuilder.canonical_json(material)).hexdigest(), material


def convert(layout, tag, chunk_size=None, prioritized=None):
    """ctr-remote's eStargz conversion of `layout:tag`, cached; returns (converted_layout, tag)."""
    key, material = cache_key(layout, tag, chunk_size, prioritized)

    def make(tmp):
        convert_uncached(layout, tag, os.path.join(tmp, "oci"), chunk_size, prioritized)
        with open(os.path.join(tmp, "provenance.json"), "wb") as f:
            f.write(imagebuilder.canonical_json({**material, "source_layout": layout}))
    root = imagebuilder.cached_dir("ctr-remote", key, make)
    return os.path.join(root, "oci"), tag


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--chunk-size"):
        print("usage: ctr_remote.py LAYOUT TAG [--chunk-size N]", file=sys.stderr)
        return 2
    reason = unavailable_reason()
    if reason:
        print(f"ctr_remote.py: {reason}", file=sys.stderr)
        return 1
    layout, tag = convert(argv[0], argv[1], int(argv[3]) if len(argv) == 4 else None)
    print(imagebuilder.oci_ref(layout, tag))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
