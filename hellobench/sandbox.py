"""Starting a hello task and timing it until it is ready, in the two ways HelloBench compares:

  LazyImage      `lazyfs run --insecure-registry … docker://…` straight from the benchmark registry; the run
                 that finds no mount of the image mounts it (with --trace / --prefetch) at
                 /run/lazyfs/images/<manifest>/rootfs, and --keep-mount keeps that mount after the task
                 stopped, so `lazyfs stats` can read its counters and a second start can reuse it. end()
                 unmounts it and waits for its daemon (the next start then mounts afresh).
  crun_bundle    an OCI bundle from `umoci unpack` run by `crun run` (the full-pull baseline).

start_until_ready() spawns a command and returns once the image's readiness condition holds
(a line of output, or a TCP port answering on 127.0.0.1), leaving the process running.
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

RUN_DIR = "/run/lazyfs/images"
KEEP_MOUNT_S = 600  # long enough to read stats and start again; the daemon ends it if we die first
LIVE = set()  # started tasks and kept mounts not yet ended: stop_all() on exit / SIGINT


def stop_all():
    for thing in list(LIVE):
        try:
            thing.stop() if isinstance(thing, Started) else thing.end()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


class Started:
    """A running task: proc, output lines, seconds until ready."""

    def __init__(self, proc, lines, seconds, on_stop=None):
        self.proc, self.lines, self.seconds, self.on_stop = proc, lines, seconds, on_stop
        LIVE.add(self)

    def stop(self, timeout=15):
        LIVE.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.on_stop:
            self.on_stop()


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_until_ready(cmd, ready, timeout, t0=None, on_stop=None):
    """Spawn `cmd` (stdout+stderr merged) and wait until `ready` holds; returns Started whose `seconds`
    counts from `t0` (default: the spawn). Raises RuntimeError (after stopping it) on exit or timeout."""
    t0 = time.monotonic() if t0 is None else t0
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines, seen = [], threading.Event()
    kind, what = ready

    def pump():
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if kind == "line" and what in line:
                seen.set()
        seen.set()  # EOF: wake the waiter

    threading.Thread(target=pump, daemon=True).start()
    started = Started(proc, lines, None, on_stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kind == "line":
            seen.wait(0.005)
            if any(what in x for x in lines):
                started.seconds = time.monotonic() - t0
                return started
        elif _port_open(what):
            started.seconds = time.monotonic() - t0
            return started
        else:
            time.sleep(0.01)  # polling the port under a deadline
        if proc.poll() is not None and not (kind == "line" and any(what in x for x in lines)):
            time.sleep(0.05)  # let the pump drain the pipe before reporting
            started.stop()
            raise RuntimeError(f"exited {proc.returncode} before ready: {' | '.join(lines[-8:])}")
    started.stop()
    raise RuntimeError(f"not ready within {timeout}s: {' | '.join(lines[-8:])}")


class LazyImage:
    """The lazy mount `lazyfs run` keeps for one registry image, in /run/lazyfs/images/<manifest hex>."""

    def __init__(self, lazyfs, manifest_hex, registry_ref, insecure, log_file):
        self.lazyfs, self.registry_ref, self.insecure, self.log_file = lazyfs, registry_ref, insecure, log_file
        self.rootfs = os.path.join(RUN_DIR, manifest_hex, "rootfs")

    def run_cmd(self, cache, cmd, network, trace=None, prefetch=None):
        """`lazyfs run` of the image; --cache-dir, --trace and --prefetch apply when this run mounts it."""
        LIVE.add(self)
        run = [self.lazyfs, "run", "--keep-mount", str(KEEP_MOUNT_S), "--cache-dir", cache, "--log-file",
               self.log_file, "--insecure-registry", self.insecure, "--network", network, "--stop-timeout", "3"]
        if trace:
            run += ["--trace", trace]
        if prefetch:
            run += ["--prefetch", prefetch]
        return run + [self.registry_ref, "--", *cmd]

    def mounted(self):
        return os.path.ismount(self.rootfs)

    def stats(self):
        proc = subprocess.run([self.lazyfs, "stats", self.rootfs, "--json"], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"lazyfs stats failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def end(self):
        """Unmount the kept mount, if any, and wait for its daemon to exit (its --trace is then complete)."""
        LIVE.discard(self)
        if not self.mounted():
            return
        pid = None
        proc = subprocess.run([self.lazyfs, "ps", "--mounts", "--json"], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            pid = next((m["pid"] for m in json.loads(proc.stdout) if m.get("mountpoint") == self.rootfs), None)
        if subprocess.run([self.lazyfs, "umount", self.rootfs], capture_output=True, timeout=60).returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", self.rootfs], capture_output=True)
        if pid:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                return
            try:
                if not select.select([fd], [], [], 60)[0]:
                    raise RuntimeError(f"the mount daemon {pid} of {self.rootfs} did not exit")
            finally:
                os.close(fd)


def crun_bundle(layout, tag, bundle, cmd, host_network):
    """`umoci unpack` the image into `bundle` and set its process to tini + `cmd`."""
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", bundle], check=True, capture_output=True,
                   timeout=1800)
    configure_bundle(bundle, cmd, host_network)


def configure_bundle(bundle, cmd, host_network):
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/dev/init", "--", *cmd]
    spec["process"].pop("rlimits", None)
    spec["root"]["readonly"] = False
    # Docker's default capability set, as `docker run` gives (umoci's config has fewer: no CHOWN/SETGID).
    caps = ["CAP_" + c for c in ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
                                 "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP")]
    spec["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    spec["mounts"].append({"destination": "/dev/init", "type": "bind", "source": shutil.which("tini-static")
                           or "/usr/bin/tini-static", "options": ["bind", "ro", "nosuid", "nodev"]})
    if host_network:
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)


def crun_start(bundle, name, ready, timeout, t0=None):
    def delete():
        subprocess.run(["crun", "kill", name, "KILL"], capture_output=True)
        subprocess.run(["crun", "delete", "-f", name], capture_output=True)
    return start_until_ready(["crun", "run", "--bundle", bundle, name], ready, timeout, t0=t0, on_stop=delete)
