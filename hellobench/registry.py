"""The benchmark's registry: Debian's docker-registry with filesystem storage in a temp dir, either on
127.0.0.1 (no network profile) or inside a netem.Link namespace behind the delay proxy.

    with BenchRegistry(link=None) as reg:
        reg.host   # "HOST:PORT" for docker:// references and --insecure-registry
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
PROXY_PORT = 5000


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchRegistry:
    def __init__(self, link=None, start_timeout=30.0):
        self.link = link
        self.start_timeout = start_timeout
        self.dir = None
        self.proc = None
        self.host = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="hellobench-registry-")
        port = _free_port()
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                    f"http:\n  addr: 127.0.0.1:{port}\n  secret: hellobench\n")
        log = open(os.path.join(self.dir, "registry.log"), "wb")
        cmd = [REGISTRY_BIN, "serve", config]
        if self.link:
            self.proc = self.link.popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        else:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait(port)
        self.host = self.link.start_proxy(PROXY_PORT, f"127.0.0.1:{port}") if self.link else f"127.0.0.1:{port}"
        self._check()

    def _wait(self, port):
        deadline = time.monotonic() + self.start_timeout
        probe = ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()"]
        if self.link:
            probe = ["ip", "netns", "exec", self.link.netns] + probe
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_tail()}")
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)  # polling a port under a deadline
        raise RuntimeError("docker-registry did not start")

    def _check(self):
        with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=10) as r:
            if r.status != 200:
                raise RuntimeError(f"registry /v2/ answered {r.status}")

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "registry.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
