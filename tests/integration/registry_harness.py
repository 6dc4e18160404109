"""A throwaway OCI distribution registry for integration tests (Python 3 stdlib only).

Runs Debian's `docker-registry` (package docker-registry) on 127.0.0.1 with filesystem storage in a temp
dir, optionally with htpasswd (bcrypt) Basic auth and optionally with TLS from a test CA made by the
`openssl` CLI. Also builds small OCI image layouts and pushes them with skopeo.

    with Registry(users={"alice": "secret"}, tls=True) as reg:
        reg.push_layout(layout_dir, "v1", "app:v1")   # skopeo copy oci:... docker://...
        reg.host      # "127.0.0.1:PORT"
        reg.ca_file   # PEM to trust (tls=True)

Nothing here is shared between tests: each Registry owns its temp dir, port and process, and stops the
process (and removes the dir) on exit, even when the test failed.
"""

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings

import harness

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SKOPEO_BIN = shutil.which("skopeo") or "/usr/bin/skopeo"

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def free_port():
    """A port nobody listens on right now (the registry binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(password):
    """A bcrypt hash for htpasswd: the registry accepts nothing else. glibc's crypt (libxcrypt) does
    bcrypt; without the crypt module (Python >= 3.13) fall back to apache2-utils' `htpasswd -B`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # noqa: PLC0415 - deprecated module, imported only here
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
        if hashed and hashed.startswith("$2"):
            return hashed
    except ImportError:
        pass
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        raise RuntimeError("no bcrypt available: install apache2-utils (htpasswd -B)")
    out = subprocess.run([htpasswd, "-nbB", "u", password], check=True, capture_output=True, text=True).stdout
    return out.strip().split(":", 1)[1]


def make_test_ca(directory):
    """Creates ca.crt and a server certificate for 127.0.0.1/localhost signed by it. Returns
    (ca_file, cert_file, key_file)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=lazyfs test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext")
    return tuple(os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key"))


class Registry:
    """A docker-registry process; use as a context manager."""

    def __init__(self, users=None, tls=False, start_timeout=30.0):
        self.users = dict(users or {})
        self.tls = tls
        self.start_timeout = start_timeout
        self.dir = None
        self.port = None
        self.ca_file = None
        self.process = None
        self.log_path = None
        self.config_path = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path):
        return f"{self.scheme}://{self.host}{path}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="lazyfs-registry-")
        self.port = free_port()
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir}/storage",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: lazyfs-test-secret",
        ]
        if self.tls:
            self.ca_file, cert, key = make_test_ca(self.dir)
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if self.users:
            htpasswd = os.path.join(self.dir, "htpasswd")
            with open(htpasswd, "w") as f:
                for user, password in self.users.items():
                    f.write(f"{user}:{bcrypt_hash(password)}\n")
            lines += ["auth:", "  htpasswd:", "    realm: lazyfs-test", f"    path: {htpasswd}"]
        self.config_path = os.path.join(self.dir, "config.yml")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.dir, "registry.log")
        try:
            self._spawn()
        except Exception:
            self.stop()
            raise

    def _spawn(self):
        log = open(self.log_path, "ab")
        try:
            # docker-registry reads REGISTRY_* variables as config overrides (REGISTRY_AUTH_FILE, meant for
            # clients, would become auth.file): the server gets none of them.
            env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
            self.process = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        finally:
            log.close()
        self._wait_ready()

    def stop_process(self):
        """Stops the registry but keeps its storage, config and port for restart_process()."""
        harness.stop_process(self.process)
        self.process = None

    def restart_process(self):
        """Starts the registry again on the same port with the same storage (after stop_process)."""
        self.stop_process()
        self._spawn()

    def _ssl_context(self):
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    def _wait_ready(self):
        """Polls GET /v2/ until the registry answers (200, or 401 when auth is on)."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url("/v2/"), timeout=2, context=self._ssl_context()):
                    return
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry not ready on {self.host}:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        self.stop_process()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def skopeo_tls_args(self, prefix):
        """skopeo options to reach this registry: prefix "dest" or "src" for copy, "" for inspect."""
        dash = f"--{prefix}-" if prefix else "--"
        args = [f"{dash}tls-verify=false"]
        if self.users:
            user, password = next(iter(self.users.items()))
            args.append(f"{dash}creds={user}:{password}")
        return args

    def push_layout(self, layout_dir, tag, name):
        """skopeo copy oci:LAYOUT:TAG docker://HOST/NAME (name includes ":tag")."""
        subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", *self.skopeo_tls_args("dest"),
                        f"oci:{layout_dir}:{tag}", f"docker://{self.host}/{name}"],
                       check=True, capture_output=True, text=True)

    def inspect_raw(self, name):
        """The manifest bytes the registry serves for NAME[:TAG] (skopeo inspect --raw)."""
        return subprocess.run([SKOPEO_BIN, "--insecure-policy", "inspect", "--raw", *self.skopeo_tls_args(""),
                               f"docker://{self.host}/{name}"], check=True, capture_output=True).stdout

    def pull_layout(self, name, layout_dir, tag):
        subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", *self.skopeo_tls_args("src"),
                        f"docker://{self.host}/{name}", f"oci:{layout_dir}:{tag}"],
                       check=True, capture_output=True, text=True)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar_gz(files):
    """A deterministic gzip'd tar of {path: bytes}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class OciImage:
    """The blobs of one image written into an OCI layout: `layers` (bytes), `config`, `manifest`."""

    def __init__(self, config, layers, manifest):
        self.config = config
        self.layers = layers
        self.manifest = manifest

    @property
    def manifest_digest(self):
        return sha256(self.manifest)


def write_oci_layout(directory, tag, layer_files, seed="lazyfs"):
    """Writes (or adds to) an OCI layout at `directory` holding one image tagged `tag` whose layers are
    tar.gz of each {path: bytes} dict in `layer_files`. Returns the OciImage."""
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def add_blob(data):
        digest = sha256(data)
        with open(os.path.join(blobs, digest.split(":", 1)[1]), "wb") as f:
            f.write(data)
        return {"digest": digest, "size": len(data)}

    layers = [_tar_gz(files) for files in layer_files]
    diff_ids = [sha256(gzip.decompress(layer)) for layer in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [f"SEED={seed}"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, **add_blob(config)},
        "layers": [{"mediaType": MEDIA_OCI_LAYER_GZIP, **add_blob(layer)} for layer in layers],
    }, separators=(",", ":")).encode()
    descriptor = {"mediaType": MEDIA_OCI_MANIFEST, **add_blob(manifest),
                  "annotations": {"org.opencontainers.image.ref.name": tag}}
    index_path = os.path.join(directory, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    index["manifests"].append(descriptor)
    with open(index_path, "w") as f:
        json.dump(index, f)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return OciImage(config, layers, manifest)


@contextlib.contextmanager
def temp_dir(prefix="lazyfs-test-"):
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
