"""Debian's nginx on 127.0.0.1 for the tests, configured by the caller's http-level directives and server
block (a registry mirror in test_registry_mount.py, a package index in package_index.py):

    with NginxServer(lambda port, d: f"server {{ listen 127.0.0.1:{port}; ... }}") as nginx:
        nginx.url, nginx.access_log(), nginx.error_log()

Everything it writes (pid, logs, temp and cache dirs) lives in a private temp dir, removed on exit.
Workers run as root, since that dir is private to root.
"""

import os
import shutil
import socket
import subprocess
import tempfile

import harness
from registry_harness import free_port


class NginxServer:
    def __init__(self, server_config, access_log_format=None, netns=None):
        """`server_config(port, dir)` returns the http-level text (a server block and what it needs).
        `netns`: run nginx in that network namespace (HelloBench's emulated links), on its loopback."""
        self.server_config = server_config
        self.netns = netns
        self.access_log_format = access_log_format
        self.dir = tempfile.mkdtemp(prefix="lazyfs-nginx-")
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        d = self.dir
        for sub in ("cache", "body", "proxy", "fcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        log_format = f"log_format lazyfs '{self.access_log_format}';" if self.access_log_format else ""
        config = f"""
worker_processes 1;
daemon off;
user root;  # workers must write the cache and temp dirs, which mkdtemp made private to root
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  {log_format}
  access_log {d}/access.log{' lazyfs' if self.access_log_format else ''};
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  {self.server_config(self.port, d)}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(config)
        in_ns = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.process = subprocess.Popen([*in_ns, "nginx", "-c", path, "-p", d], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening():
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.error_log()}")
            if self.netns:
                probe = f"import socket; socket.create_connection(('127.0.0.1', {self.port}), 1).close()"
                return subprocess.run([*in_ns, "python3", "-c", probe], capture_output=True).returncode == 0
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        harness.wait_for(listening, 20, "nginx to listen")
        return self

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read()
        except OSError:
            return ""

    def clear_access_log(self):
        open(os.path.join(self.dir, "access.log"), "w").close()

    def __exit__(self, *exc):
        harness.stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False
