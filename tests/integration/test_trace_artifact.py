#!/usr/bin/env python3
"""`lazyfs trace push` and `lazyfs mount --prefetch auto` end to end, against Debian's docker-registry.

Run as root:  python3 test_trace_artifact.py --lazyfs /path/to/lazyfs

Two images with the same paths and different bytes (A and B) are converted to eStargz with 64 KiB chunks
and pushed to a registry on 127.0.0.1. The scripted workload reads two files whole and three pages of a
big file with readahead off (POSIX_FADV_RANDOM), so the chunks it needs are known exactly: EXPECTED_CHUNKS.
Every mount starts with an empty cache and `--fetch-ahead 0`, so the chunks fetched are exactly the
chunks read. setUpClass records the workload's trace on A (and on B) with `mount --trace`. Checks:
  - round trip: `trace push` stores an OCI artifact whose subject is A's manifest and whose one layer is
    the trace file, tagged `sha256-<A hex>.lazyfs-trace`; a cold `mount --prefetch auto` finds it (stats
    name the artifact), plans and fetches exactly the chunks the recording mount fetched, and the same
    workload then has 0 foreground chunk misses and fetches 0 more bytes, reading the right bytes;
  - no artifact: the mount works, logs that no trace is stored, has no prefetcher, and the workload
    misses every chunk in the foreground;
  - an artifact that must not be used — the trace blob corrupted in the registry's storage, the artifact
    of image B put under A's tag, an artifact for A holding a trace recorded on B: the mount still works,
    a warning names the artifact and the cause, and nothing is prefetched.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from imagebuilder import layer, pseudo_random, recipe, regular  # noqa: E402
from registry_harness import MEDIA_OCI_MANIFEST, SKOPEO_BIN, REGISTRY_BIN, Registry  # noqa: E402

CHUNK = 64 << 10
PAGE = 4096
WHOLE = {"app/main.bin": 300_001, "app/conf.txt": 5_000}     # read whole, twice
BIG, BIG_SIZE = "data/big.bin", 2 << 20
BIG_PAGES = [0, 100, 400]                                     # pages in chunks 0, 6 and 25
UNREAD = {"data/unread.bin": 512 << 10, "app/skip.bin": 256 << 10}
EXPECTED_CHUNKS = sum(-(-size // CHUNK) for size in WHOLE.values()) + len({p * PAGE // CHUNK for p in BIG_PAGES})
NEEDED = sum(WHOLE.values()) + len(BIG_PAGES) * PAGE
PREFETCH_TIMEOUT = 60

_WORKLOAD = r"""
import hashlib, json, os, sys
root, whole, big, pages = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4].split(",")
out = {}
for rel in whole:
    for _ in range(2):  # the second pass is served by the page cache
        h = hashlib.sha256()
        with open(os.path.join(root, rel), "rb") as f:
            while buf := f.read(1 << 20):
                h.update(buf)
    out[rel] = h.hexdigest()
fd = os.open(os.path.join(root, big), os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
out[big] = [hashlib.sha256(os.pread(fd, 4096, int(p) * 4096)).hexdigest() for p in pages]
os.close(fd)
print(json.dumps(out))
"""


def image_files(seed):
    """{path: content descriptor} of image `seed` (A = 1, B = 2): same paths, different bytes."""
    files = {BIG: pseudo_random(BIG_SIZE, seed=seed * 100)}
    for i, (path, size) in enumerate({**WHOLE, **UNREAD}.items()):
        files[path] = pseudo_random(size, seed=seed * 100 + i + 1)
    return files


def image_recipe(name, seed):
    files = image_files(seed)
    lower = [BIG, "data/unread.bin"]
    return recipe(name, [layer([regular(p, content=files[p]) for p in lower]),
                         layer([regular(p, content=c) for p, c in files.items() if p not in lower])])


def expected_workload(seed):
    files = image_files(seed)
    out = {rel: imagebuilder.content_sha256(files[rel]) for rel in WHOLE}
    big = imagebuilder.content_bytes(files[BIG])
    out[BIG] = [hashlib.sha256(big[p * PAGE:(p + 1) * PAGE]).hexdigest() for p in BIG_PAGES]
    return out


def blob_path(reg, digest):
    """Where docker-registry's filesystem driver keeps the bytes of blob `digest`."""
    hexd = digest.split(":", 1)[1]
    return os.path.join(reg.dir, "storage", "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")


def http(reg, method, path, body=None, headers=None):
    request = urllib.request.Request(reg.url(path), data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def get_manifest(reg, repo, ref):
    _, _, body = http(reg, "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MEDIA_OCI_MANIFEST})
    return body


def put_manifest(reg, repo, tag, body):
    status, _, _ = http(reg, "PUT", f"/v2/{repo}/manifests/{tag}", body=body,
                        headers={"Content-Type": MEDIA_OCI_MANIFEST})
    assert status == 201, status


def copy_image(src_reg, src, dst_reg, dst):
    """skopeo copy docker:// -> docker://, which keeps the manifest bytes (checked)."""
    subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                    "--dest-tls-verify=false", f"docker://{src_reg.host}/{src}", f"docker://{dst_reg.host}/{dst}"],
                   check=True, capture_output=True, text=True, timeout=300)
    assert dst_reg.inspect_raw(dst) == src_reg.inspect_raw(src), f"skopeo changed the manifest of {src}"


def artifact_tag(digest):
    return "sha256-" + digest.split(":", 1)[1] + ".lazyfs-trace"


class TraceArtifactTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        for tool in (REGISTRY_BIN, SKOPEO_BIN):
            if not os.access(tool, os.X_OK):
                raise unittest.SkipTest(f"{tool} not installed")
        cls.classdir = tempfile.mkdtemp(prefix="lazyfs-it-artifact.")
        cls.reg = Registry()
        cls.reg.start()
        cls.class_mounts = harness.MountSet()
        try:
            cls.digest, cls.trace, cls.recorded = {}, {}, {}
            for name, seed in (("a", 1), ("b", 2)):
                layout, tag = imagebuilder.build(image_recipe(f"artifact-{name}", seed))
                proc = harness.run_lazyfs(["convert", "-q", "--chunk-size", str(CHUNK), "--insecure-registry",
                                           cls.reg.host, imagebuilder.oci_ref(layout, tag),
                                           f"docker://{cls.reg.host}/source/app:{name}"], timeout=600)
                if proc.returncode != 0:
                    raise AssertionError(f"lazyfs convert to the registry failed: {proc.stderr}")
                cls.digest[name] = "sha256:" + hashlib.sha256(cls.reg.inspect_raw(f"source/app:{name}")).hexdigest()
                cls.trace[name], cls.recorded[name] = cls.record(name)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.class_mounts.cleanup()
        finally:
            cls.reg.stop()
            shutil.rmtree(cls.classdir, ignore_errors=True)

    @classmethod
    def record(cls, name):
        """Mounts source/app:NAME with --trace, runs the workload, unmounts; returns (trace, stats)."""
        trace = os.path.join(cls.classdir, f"{name}.trace")
        m = cls.class_mounts.mount(f"docker://{cls.reg.host}/source/app:{name}", name=f"record-{name}",
                                   extra=["--insecure-registry", cls.reg.host, "--fetch-ahead", "0",
                                          "--trace", trace])
        if not m.ok:
            raise AssertionError(m.describe())
        got = run_workload(m)
        if got != expected_workload(1 if name == "a" else 2):
            raise AssertionError(f"recording mount of {name} read wrong bytes")
        stats = mount_stats(m)
        if not harness.unmount(m.mountpoint):
            raise AssertionError(f"could not unmount {m.mountpoint}")
        # The daemon writes the rest of the trace after unmounting.
        harness.wait_for(lambda: not any(harness.pid_alive(p) for p in m.pids), 60, "the daemon to exit")
        return trace, stats

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    # -- helpers -----------------------------------------------------------------------------------

    def lazyfs_ok(self, args):
        proc = harness.run_lazyfs(args)
        self.assertEqual(proc.returncode, 0, f"lazyfs {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def trace_push(self, name, reg, repo):
        out = self.lazyfs_ok(["trace", "push", "--insecure-registry", reg.host, self.trace[name],
                              f"docker://{reg.host}/{repo}:ignored-tag"])
        return out.split()

    def mount_auto(self, reg, repo, name="auto"):
        m = self.mounts.mount(f"docker://{reg.host}/{repo}:a", name=name,
                              extra=["--insecure-registry", reg.host, "--fetch-ahead", "0", "--prefetch", "auto"])
        self.assertTrue(m.ok, m.describe())
        return m

    def assert_not_prefetched(self, m, *causes):
        """The mount works without prefetching: no prefetcher, a warning naming the cause (if any), every
        chunk of the workload a foreground miss, and the right bytes."""
        s = mount_stats(m)
        self.assertIsNone(s["prefetch"], m.log_tail())
        self.assertEqual(s["fetches"], 0)
        log = m.log()
        self.assertNotIn("prefetch from", log)
        for cause in causes:
            self.assertIn(cause, log)
        self.assertEqual(run_workload(m), expected_workload(1))
        s = mount_stats(m)
        self.assertEqual(s["fetches"], EXPECTED_CHUNKS)
        self.assertGreaterEqual(s["chunk_misses"], EXPECTED_CHUNKS)
        self.assertEqual(s["read_errors"], 0)

    # -- tests -------------------------------------------------------------------------------------

    def test_recording_fetched_exactly_the_workload_chunks(self):
        for name in ("a", "b"):
            r = self.recorded[name]
            self.assertEqual(r["manifest_digest"], self.digest[name])
            self.assertEqual(r["fetches"], EXPECTED_CHUNKS, name)
            self.assertGreaterEqual(r["chunk_misses"], EXPECTED_CHUNKS, name)
            self.assertEqual(r["bytes_needed"], NEEDED, name)
            shown = json.loads(self.lazyfs_ok(["trace", "show", "--json", self.trace[name]]))
            self.assertEqual(shown["manifest_digest"], self.digest[name])
            self.assertEqual({rec["path"] for rec in shown["records"]}, set(WHOLE) | {BIG})

    def test_push_then_prefetch_auto_removes_every_foreground_miss(self):
        repo = "roundtrip/app"
        copy_image(self.reg, "source/app:a", self.reg, f"{repo}:a")
        with open(self.trace["a"], "rb") as f:
            trace_bytes = f.read()

        # The artifact: subject A, one layer = the trace file, under the fallback tag.
        ref, artifact_digest = self.trace_push("a", self.reg, repo)
        self.assertEqual(ref, f"{self.reg.host}/{repo}:{artifact_tag(self.digest['a'])}")
        body = get_manifest(self.reg, repo, artifact_tag(self.digest["a"]))
        self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), artifact_digest)
        artifact = json.loads(body)
        self.assertEqual(artifact["artifactType"], "application/vnd.lazyfs.trace.v1")
        self.assertEqual(artifact["subject"]["digest"], self.digest["a"])
        self.assertEqual(artifact["subject"]["size"], len(self.reg.inspect_raw(f"{repo}:a")))
        [blob] = artifact["layers"]
        self.assertEqual(blob["digest"], "sha256:" + hashlib.sha256(trace_bytes).hexdigest())
        self.assertEqual(blob["size"], len(trace_bytes))
        self.assertEqual(http(self.reg, "GET", f"/v2/{repo}/blobs/{blob['digest']}")[2], trace_bytes)
        # The image's own tag is untouched.
        self.assertEqual("sha256:" + hashlib.sha256(self.reg.inspect_raw(f"{repo}:a")).hexdigest(), self.digest["a"])

        # A cold mount finds it and prefetches exactly what the recording mount fetched.
        m = self.mount_auto(self.reg, repo)
        done = harness.wait_for(lambda: (lambda s: s if s["prefetch"] and s["prefetch"]["finished"] else None)(
            mount_stats(m)), PREFETCH_TIMEOUT, "prefetch to finish")
        p = done["prefetch"]
        records = len(json.loads(self.lazyfs_ok(["trace", "show", "--json", self.trace["a"]]))["records"])
        self.assertEqual(p["source"], f"docker://{self.reg.host}/{repo}:{artifact_tag(self.digest['a'])}")
        self.assertIn(f"--prefetch auto: using the stored trace {p['source']}", m.log())
        self.assertEqual(p["trace_records"], records)
        self.assertEqual(p["missing_paths"], 0)
        self.assertEqual(p["errors"], 0)
        self.assertEqual(p["planned_chunks"], self.recorded["a"]["fetches"])
        self.assertEqual(p["planned_chunks"], EXPECTED_CHUNKS)
        self.assertEqual(p["done_chunks"], p["planned_chunks"])
        self.assertEqual(p["fetched_chunks"], p["planned_chunks"])
        self.assertEqual(p["cached_chunks"], 0)
        self.assertEqual(done["chunk_misses"], 0)          # no foreground read yet
        self.assertEqual(done["fetches"], EXPECTED_CHUNKS)  # the prefetcher fetched nothing else
        self.assertEqual(done["bytes_fetched"], self.recorded["a"]["bytes_fetched"])

        # The same workload is now served from the cache alone.
        self.assertEqual(run_workload(m), expected_workload(1))
        s = mount_stats(m)
        self.assertEqual(s["chunk_misses"], 0, f"foreground misses after prefetch (without: "
                                               f"{self.recorded['a']['chunk_misses']})")
        self.assertGreaterEqual(s["chunk_hits"], EXPECTED_CHUNKS)
        self.assertEqual(s["fetches"], done["fetches"])
        self.assertEqual(s["bytes_fetched"], done["bytes_fetched"])
        self.assertEqual(s["bytes_needed"], NEEDED)
        self.assertEqual(s["read_errors"], 0)

    def test_no_artifact_mounts_without_prefetch(self):
        repo = "bare/app"
        copy_image(self.reg, "source/app:a", self.reg, f"{repo}:a")
        m = self.mount_auto(self.reg, repo)
        self.assertIn(f"--prefetch auto: no trace stored for docker://{self.reg.host}/{repo}:a", m.log())
        self.assert_not_prefetched(m)

    def test_corrupted_trace_blob_is_not_used(self):
        # Its own registry: blobs are shared by every repository of a registry's storage.
        with Registry() as reg:
            repo = "corrupt/app"
            copy_image(self.reg, "source/app:a", reg, f"{repo}:a")
            self.trace_push("a", reg, repo)
            with open(self.trace["a"], "rb") as f:
                trace_bytes = f.read()
            digest = "sha256:" + hashlib.sha256(trace_bytes).hexdigest()
            path = blob_path(reg, digest)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), trace_bytes)
            bad = bytearray(trace_bytes)
            bad[len(bad) // 2] ^= 0xFF
            with open(path, "wb") as f:
                f.write(bad)
            # The registry now serves the flipped byte under the old digest.
            self.assertEqual(http(reg, "GET", f"/v2/{repo}/blobs/{digest}")[2], bytes(bad))
            m = self.mount_auto(reg, repo)
            self.assert_not_prefetched(
                m, f"--prefetch auto: not using the stored trace docker://{reg.host}/{repo}:"
                   f"{artifact_tag(self.digest['a'])}", "content hashes to")

    def test_artifact_of_another_image_is_not_used(self):
        repo = "wrongsubject/app"
        copy_image(self.reg, "source/app:a", self.reg, f"{repo}:a")
        copy_image(self.reg, "source/app:b", self.reg, f"{repo}:b")
        self.trace_push("b", self.reg, repo)
        # B's artifact, byte for byte, under A's tag.
        body = get_manifest(self.reg, repo, artifact_tag(self.digest["b"]))
        self.assertEqual(json.loads(body)["subject"]["digest"], self.digest["b"])
        put_manifest(self.reg, repo, artifact_tag(self.digest["a"]), body)
        m = self.mount_auto(self.reg, repo)
        self.assert_not_prefetched(
            m, f"--prefetch auto: not using the stored trace docker://{self.reg.host}/{repo}:"
               f"{artifact_tag(self.digest['a'])}", "refers to another image")

    def test_artifact_holding_a_trace_of_another_image_is_not_used(self):
        repo = "foreigntrace/app"
        copy_image(self.reg, "source/app:a", self.reg, f"{repo}:a")
        copy_image(self.reg, "source/app:b", self.reg, f"{repo}:b")
        self.trace_push("b", self.reg, repo)  # puts B's trace blob in the repository
        # An artifact that claims A as its subject but carries the trace recorded on B.
        artifact = json.loads(get_manifest(self.reg, repo, artifact_tag(self.digest["b"])))
        subject = self.reg.inspect_raw(f"{repo}:a")
        artifact["subject"] = {"mediaType": MEDIA_OCI_MANIFEST, "digest": self.digest["a"], "size": len(subject)}
        put_manifest(self.reg, repo, artifact_tag(self.digest["a"]), json.dumps(artifact).encode())
        m = self.mount_auto(self.reg, repo)
        self.assert_not_prefetched(
            m, f"--prefetch auto: not using the stored trace docker://{self.reg.host}/{repo}:"
               f"{artifact_tag(self.digest['a'])}", f"recorded on image {self.digest['b']}")


def run_workload(m):
    proc = subprocess.run([sys.executable, "-c", _WORKLOAD, m.mountpoint, ",".join(WHOLE), BIG,
                           ",".join(map(str, BIG_PAGES))], capture_output=True, text=True,
                          timeout=harness.READ_TIMEOUT)
    if proc.returncode != 0:
        raise AssertionError(f"workload failed: {proc.stderr}\n{m.log_tail()}")
    return json.loads(proc.stdout)


def mount_stats(m):
    proc = harness.run_lazyfs(["stats", "--json", m.mountpoint])
    if proc.returncode != 0:
        raise AssertionError(f"lazyfs stats failed: {proc.stderr}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
