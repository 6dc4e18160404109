#!/usr/bin/env python3
"""lazyfs mounts images straight from an OCI distribution registry (Debian's docker-registry on 127.0.0.1).

Run as root:  python3 test_registry_mount.py --lazyfs /path/to/lazyfs

Checks, against real servers only (docker-registry, nginx, openssl, skopeo, umoci):
  - `lazyfs convert oci:… docker://…` and a mount of the result equal `umoci unpack` of the image;
  - a cold mount fetches only the manifest, the config and each layer's footer + TOC (counted by a
    pass-through fault_proxy.FaultProxy), and small reads fetch only the chunks they touch;
  - basic auth through htpasswd with credentials from $REGISTRY_AUTH_FILE; HTTPS with a test CA, and a
    refused mount without --ca-file;
  - `lazyfs push` then `skopeo inspect`; a second push uploads nothing; convert docker:// -> docker://;
  - an nginx caching proxy as a --mirror is tried before the origin;
  - the registry stopped while mounted: reads fail with EIO within the --read-timeout bound, and succeed
    again once it is back (same storage dir and port);
  - faults injected on blob GETs (resets, delays, stalls, drips, 5xx, 429 + Retry-After, truncated and
    corrupted bodies): every read returns the right bytes or EIO within the bound, never wrong bytes, and
    a corrupted chunk is not cached (a later clean read returns the right bytes).
"""

import base64
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
import recipes  # noqa: E402
import treecmp  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from nginx_harness import NginxServer  # noqa: E402
from registry_harness import Registry, free_port, write_oci_layout  # noqa: E402

TOC_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
MiB = 1 << 20
READ_BOUND = 4          # --read-timeout for the fault tests, seconds
BOUND_SLACK = 6         # FUSE, process start and scheduling on a loaded CI box


def lazyfs(args, timeout=900, env=None):
    return subprocess.run([harness.LAZYFS, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout, env=env)


def small_layers(seed):
    rng = __import__("random").Random(seed)
    return [{"etc/hello.txt": f"hello {seed}\n".encode() * 50,
             "usr/lib/blob.bin": bytes(rng.getrandbits(8) for _ in range(200_000))}]


def file_bytes(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def Nginx(upstream):
    """nginx as a caching reverse proxy (a registry mirror) in front of `upstream`, on 127.0.0.1."""
    return NginxServer(lambda port, d: f"""
  proxy_cache_path {d}/cache keys_zone=blobs:10m max_size=2g inactive=1h;
  server {{
    listen 127.0.0.1:{port};
    location /v2/ {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache blobs;
      proxy_cache_valid 200 1h;
      proxy_force_ranges on;
    }}
  }}""")


class RegistryMountTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        for tool in ("docker-registry", "skopeo", "openssl", "nginx"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed")
        # Keep the developer's own auth files out of the tests.
        os.environ["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
        os.environ.pop("http_proxy", None)
        os.environ.pop("https_proxy", None)
        cls.layout, cls.tag = imagebuilder.build(recipes.features())
        cls.reference = harness.reference_rootfs(cls.layout, cls.tag)
        cls.registry = Registry().__enter__()
        cls.reg = cls.registry.host
        # oci -> docker:// convert: the eStargz image every lazy test mounts.
        cls.convert = lazyfs(["convert", "-q", "--insecure-registry", cls.reg, f"oci:{cls.layout}:{cls.tag}",
                              f"docker://{cls.reg}/features:estargz"])

    @classmethod
    def tearDownClass(cls):
        cls.registry.__exit__(None, None, None)

    def setUp(self):
        self.assertEqual(self.convert.returncode, 0, f"convert to the registry failed: {self.convert.stderr}")
        self.mounts = harness.MountSet()
        self.servers = []

    def tearDown(self):
        try:
            self.mounts.cleanup()
        finally:
            for server in reversed(self.servers):
                server.__exit__(None, None, None)

    def serve(self, server):
        self.servers.append(server)
        return server.__enter__()

    def mount(self, ref, extra=(), ok=True):
        m = self.mounts.mount(ref, extra=list(extra))
        if ok:
            self.assertTrue(m.ok, m.describe())
        return m

    def assertReadCorrect(self, m, rel, offset, length):
        got = harness.bounded_read(m.path(rel), offset, length)
        want = file_bytes(os.path.join(self.reference, rel), offset, length)
        self.assertTrue(got["ok"], f"read {rel}@{offset}: {got}\nlog:\n{m.log_tail()}")
        self.assertEqual(got["sha256"], harness.sha256_hex(want), f"wrong bytes for {rel}@{offset}")

    # -- equality and laziness ----------------------------------------------------------------------

    def test_converted_image_is_estargz_in_the_registry(self):
        manifest = json.loads(self.registry.inspect_raw("features:estargz"))
        self.assertEqual(len(manifest["layers"]), 3)
        for layer in manifest["layers"]:
            self.assertIn(TOC_ANNOTATION, layer.get("annotations", {}))

    def test_mount_equals_umoci_and_fetches_only_footer_and_toc(self):
        proxy = self.serve(FaultProxy(self.reg))
        # Without fetch-ahead, so each read fetches exactly the chunks it touches.
        m = self.mount(f"docker://{proxy.host}/features:estargz",
                       ["--insecure-registry", proxy.host, "--fetch-ahead", "0"])
        at_mount = proxy.record()
        blob_gets = [e for e in at_mount if e.is_blob_get]
        layers = 3
        # The config, then per layer the footer and the TOC: nothing else before the first read.
        self.assertLessEqual(len(blob_gets), 1 + 2 * layers, at_mount)
        self.assertTrue(all(e.range for e in blob_gets if e.body_bytes > 4096), at_mount)
        self.assertEqual(sum(1 for e in at_mount if "/manifests/" in e.path), 1, at_mount)

        # Scripted small reads: each touches one chunk, so at most one request each.
        proxy.reset_record()
        self.assertReadCorrect(m, recipes.SMALL_PATH, 0, -1)
        self.assertReadCorrect(m, recipes.RANDOM_PATH, 5 * MiB + 100, 4096)
        self.assertReadCorrect(m, "etc/passwd", 0, -1)
        reads = proxy.blob_gets()
        self.assertLessEqual(len(reads), 3, reads)
        # The 1 MiB random chunk dominates; merged or not, nothing close to the 24 MiB file came over.
        self.assertLess(sum(e.body_bytes for e in reads), int(1.1 * MiB) + 64 * 1024, reads)

        res = treecmp.compare(m.mountpoint, self.reference)
        self.assertTrue(res.equal, f"mount of the registry image vs umoci unpack\n{res.report(50)}")

    def test_fetch_ahead_brings_neighbouring_files_in_one_request(self):
        proxy = self.serve(FaultProxy(self.reg))
        m = self.mount(f"docker://{proxy.host}/features:estargz", ["--insecure-registry", proxy.host])
        files = [f"{recipes.MANY_DIR}/entry-{i:05d}" for i in range(1, 200) if i % 3]
        proxy.reset_record()
        self.assertReadCorrect(m, files[0], 0, -1)
        first = proxy.blob_gets()
        self.assertEqual(len(first), 1, first)
        # The default window (256 KiB past the miss) plus at most one merge gap, never the whole layer.
        self.assertLess(first[0].body_bytes, 256 * 1024 + 64 * 1024 + 4096, first)
        proxy.reset_record()
        for rel in files[1:]:
            self.assertReadCorrect(m, rel, 0, -1)
        self.assertEqual(proxy.blob_gets(), [], "the neighbours came with the first miss")
        stats = json.loads(lazyfs(["stats", "--json", m.mountpoint]).stdout)
        self.assertEqual(stats["requests"], 1, stats)
        self.assertGreaterEqual(stats["chunk_hits"], len(files) - 1, stats)

    # -- auth and TLS -------------------------------------------------------------------------------

    def test_basic_auth_with_registry_auth_file(self):
        with tempfile.TemporaryDirectory() as d:
            reg = self.serve(Registry(users={"alice": "s3cret"}))
            write_oci_layout(d + "/layout", "v1", small_layers(3))
            auth = os.path.join(d, "auth.json")
            with open(auth, "w") as f:
                json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}}, f)
            env = dict(os.environ, REGISTRY_AUTH_FILE=auth)
            pushed = lazyfs(["push", "-q", "--insecure-registry", reg.host, f"oci:{d}/layout:v1",
                             f"docker://{reg.host}/private/app:v1"], env=env)
            self.assertEqual(pushed.returncode, 0, pushed.stderr)
            self.assertNotIn("s3cret", pushed.stderr)

            refused = self.mount(f"docker://{reg.host}/private/app:v1", ["--insecure-registry", reg.host], ok=False)
            self.assertNotEqual(refused.proc.returncode, 0)
            os.environ["REGISTRY_AUTH_FILE"] = auth
            try:
                m = self.mount(f"docker://{reg.host}/private/app:v1", ["--insecure-registry", reg.host])
            finally:
                os.environ["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
            got = harness.bounded_read(m.path("etc/hello.txt"))
            self.assertTrue(got["ok"], got)
            self.assertEqual(got["sha256"], harness.sha256_hex(small_layers(3)[0]["etc/hello.txt"]))
            self.assertNotIn("s3cret", m.log())
            self.assertNotIn(base64.b64encode(b"alice:s3cret").decode(), m.log())

    def test_https_with_test_ca(self):
        with tempfile.TemporaryDirectory() as d:
            reg = self.serve(Registry(tls=True))
            write_oci_layout(d + "/layout", "v1", small_layers(4))
            reg.push_layout(d + "/layout", "v1", "tls/app:v1")
            ref = f"docker://{reg.host}/tls/app:v1"
            refused = self.mount(ref, ok=False)
            self.assertNotEqual(refused.proc.returncode, 0)
            self.assertIn("TLS", refused.proc.stderr + refused.log())
            m = self.mount(ref, ["--ca-file", reg.ca_file])
            got = harness.bounded_read(m.path("usr/lib/blob.bin"))
            self.assertTrue(got["ok"], got)
            self.assertEqual(got["sha256"], harness.sha256_hex(small_layers(4)[0]["usr/lib/blob.bin"]))

    # -- push and convert ---------------------------------------------------------------------------

    def test_push_then_skopeo_inspect_and_convert_docker_to_docker(self):
        with tempfile.TemporaryDirectory() as d:
            image = write_oci_layout(d + "/layout", "v1", small_layers(5))
            dst = f"docker://{self.reg}/pushed/app:v1"
            first = lazyfs(["push", "--insecure-registry", self.reg, f"oci:{d}/layout:v1", dst])
            self.assertEqual(first.returncode, 0, first.stderr)
            self.assertEqual(self.registry.inspect_raw("pushed/app:v1"), image.manifest)
            again = lazyfs(["push", "--insecure-registry", self.reg, f"oci:{d}/layout:v1", dst])
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("already present", again.stderr)
            self.assertNotIn("uploaded blob", again.stderr)

            conv = lazyfs(["convert", "-q", "--insecure-registry", self.reg, dst,
                           f"docker://{self.reg}/pushed/app:estargz"])
            self.assertEqual(conv.returncode, 0, conv.stderr)
            manifest = json.loads(self.registry.inspect_raw("pushed/app:estargz"))
            self.assertIn(TOC_ANNOTATION, manifest["layers"][0]["annotations"])
            m = self.mount(f"docker://{self.reg}/pushed/app:estargz", ["--insecure-registry", self.reg])
            got = harness.bounded_read(m.path("usr/lib/blob.bin"))
            self.assertTrue(got["ok"], got)
            self.assertEqual(got["sha256"], harness.sha256_hex(small_layers(5)[0]["usr/lib/blob.bin"]))

    # -- mirrors ------------------------------------------------------------------------------------

    def test_nginx_caching_mirror_is_tried_first(self):
        nginx = self.serve(Nginx(self.reg))
        proxy = self.serve(FaultProxy(self.reg))  # the origin, counted
        m = self.mount(f"docker://{proxy.host}/features:estargz",
                       ["--insecure-registry", proxy.host, "--mirror", nginx.url])
        self.assertReadCorrect(m, recipes.RANDOM_PATH, 3 * MiB, 65536)
        self.assertIn("/v2/features/blobs/sha256:", nginx.access_log())
        self.assertIn("/v2/features/manifests/estargz", nginx.access_log())
        self.assertEqual(proxy.blob_gets(), [], "the origin was asked although the mirror had everything")

    # -- faults -------------------------------------------------------------------------------------

    def test_registry_restart_while_mounted(self):
        reg = self.serve(Registry())
        pushed = lazyfs(["convert", "-q", "--insecure-registry", self.reg, "--insecure-registry", reg.host,
                         f"docker://{self.reg}/features:estargz", f"docker://{reg.host}/features:estargz"])
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        m = self.mount(f"docker://{reg.host}/features:estargz",
                       ["--insecure-registry", reg.host, "--read-timeout", "3", "--retries", "3"])
        self.assertReadCorrect(m, recipes.RANDOM_PATH, 0, 4096)
        reg.stop_process()
        started = time.monotonic()
        got = harness.bounded_read(m.path(recipes.RANDOM_PATH), 7 * MiB, 4096, timeout=60)
        elapsed = time.monotonic() - started
        self.assertFalse(got["ok"], got)
        self.assertEqual(got.get("errno"), errno.EIO, got)
        self.assertLess(elapsed, 3 + BOUND_SLACK, f"EIO took {elapsed:.1f}s")
        reg.restart_process()
        self.assertReadCorrect(m, recipes.RANDOM_PATH, 7 * MiB, 4096)
        self.assertTrue(m.daemon_alive())

    def test_one_read_on_a_silent_registry_waits_one_bound_not_two(self):
        # The kernel's readahead fails at the deadline, then it asks again for one page inside the same
        # read(2): that retry must be answered at once, not given a fresh --read-timeout.
        proxy = self.serve(FaultProxy(self.reg))
        bound = 3
        m = self.mount(f"docker://{proxy.host}/features:estargz",
                       ["--insecure-registry", proxy.host, "--read-timeout", str(bound)])
        proxy.inject("stall")
        started = time.monotonic()
        got = harness.bounded_read(m.path(recipes.RANDOM_PATH), 5 * MiB + 123, 8192, timeout=60)
        elapsed = time.monotonic() - started
        proxy.inject(None)
        self.assertEqual(got.get("errno"), errno.EIO, got)
        log = m.log_tail(200)
        self.assertIn("not fetched again", log, "the kernel's retry was fetched again")
        # Twice the bound was the bug; one bound plus process start and scheduling is right.
        self.assertLess(elapsed, 2 * bound, f"one read(2) took {elapsed:.1f}s with --read-timeout {bound}")
        # Another reader, now that the registry answers again, is served at once.
        self.assertReadCorrect(m, recipes.RANDOM_PATH, 5 * MiB + 123, 8192)

    def test_plain_layer_streamed_once_for_concurrent_misses_and_bounded(self):
        # A plain tar+gzip layer lives only in the cache once indexed. After its chunks are evicted, readers
        # that miss different chunks at once wait for one stream (one GET), not one stream each; and a
        # stream that stalls ends in EIO within --read-timeout like any read.
        rec = imagebuilder.recipe("plain-restream", [imagebuilder.layer([
            imagebuilder.directory("data"),
            imagebuilder.regular("data/target.bin", content=imagebuilder.pseudo_random(8 * MiB, seed=77)),
            imagebuilder.regular("data/other.bin", content=imagebuilder.pseudo_random(2 * MiB, seed=78))],
            level=1)], tag="plain")
        layout, tag = imagebuilder.build(rec)
        reference = os.path.join(harness.reference_rootfs(layout, tag), "data/target.bin")
        pushed = lazyfs(["push", "-q", "--insecure-registry", self.reg, imagebuilder.oci_ref(layout, tag),
                         f"docker://{self.reg}/plain-restream:1"])
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        proxy = self.serve(FaultProxy(self.reg))
        m = self.mount(f"docker://{proxy.host}/plain-restream:1",
                       ["--insecure-registry", proxy.host, "--read-timeout", str(READ_BOUND)])
        evict = ["cache", "gc", "--to", "0", "--cache-dir", m.cache_dir]
        self.assertEqual(lazyfs(evict).returncode, 0)
        proxy.reset_record()
        results = [None] * 8

        def read(i):
            results[i] = harness.bounded_read(m.path("data/target.bin"), i * MiB, MiB, timeout=60)
        threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, got in enumerate(results):
            self.assertTrue(got["ok"], f"reader {i}: {got}\n{m.log_tail()}")
            self.assertEqual(got["sha256"], harness.sha256_hex(file_bytes(reference, i * MiB, MiB)), f"reader {i}")
        self.assertEqual(len(proxy.blob_gets()), 1, f"the layer was streamed more than once: {proxy.blob_gets()}")

        self.assertEqual(lazyfs(evict).returncode, 0)
        proxy.inject("stall")
        started = time.monotonic()
        got = harness.bounded_read(m.path("data/other.bin"), 0, 4096, timeout=60)
        elapsed = time.monotonic() - started
        proxy.inject(None)
        self.assertEqual(got.get("errno"), errno.EIO, got)
        self.assertLess(elapsed, READ_BOUND + BOUND_SLACK, f"a stalled restream took {elapsed:.1f}s")
        again = harness.bounded_read(m.path("data/target.bin"), 3 * MiB, 4096, timeout=60)
        self.assertTrue(again["ok"], f"{again}\n{m.log_tail()}")
        self.assertEqual(again["sha256"], harness.sha256_hex(file_bytes(reference, 3 * MiB, 4096)))
        self.assertTrue(m.daemon_alive())

    def test_fault_proxy_right_bytes_or_bounded_eio(self):
        proxy = self.serve(FaultProxy(self.reg))
        m = self.mount(f"docker://{proxy.host}/features:estargz",
                       ["--insecure-registry", proxy.host, "--read-timeout", str(READ_BOUND)])
        rel = recipes.RANDOM_PATH
        want_path = os.path.join(self.reference, rel)
        # (fault, params, count, must succeed): each case reads a chunk no earlier case touched.
        cases = [
            ("reset", {}, 2, True),
            ("status", {"status": 503}, 2, True),
            ("status", {"status": 429, "retry_after": 1}, 1, True),
            ("delay", {"seconds": 0.5}, 1, True),
            ("truncate", {}, 1, True),
            ("status", {"status": 500}, None, False),
            ("stall", {}, None, False),
            ("drip", {"seconds": 120}, None, False),
            ("corrupt", {}, None, False),
        ]
        for i, (kind, params, count, must_succeed) in enumerate(cases):
            offset = (2 * i + 1) * MiB + 123  # a chunk apart, so readahead of one case is not the next
            with self.subTest(fault=kind, params=params):
                proxy.inject(kind, count=count, **params)
                started = time.monotonic()
                got = harness.bounded_read(m.path(rel), offset, 8192, timeout=60)
                elapsed = time.monotonic() - started
                proxy.inject(None)
                self.assertLess(elapsed, READ_BOUND + BOUND_SLACK, f"{kind}: read took {elapsed:.1f}s")
                if got["ok"]:
                    self.assertEqual(got["sha256"], harness.sha256_hex(file_bytes(want_path, offset, 8192)),
                                     f"{kind}: WRONG BYTES served")
                else:
                    self.assertEqual(got.get("errno"), errno.EIO, f"{kind}: {got}")
                if must_succeed:
                    self.assertTrue(got["ok"], f"{kind} should have been retried: {got}\n{m.log_tail()}")
                # Whatever happened, a clean path now serves the right bytes (nothing bad was cached).
                self.assertReadCorrect(m, rel, offset, 8192)
        self.assertTrue(m.daemon_alive())


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
