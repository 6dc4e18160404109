"""Shared cache: many mounts (separate processes), one LMDB cache dir.

  - 8 concurrent mounts with parallel readers over a tiny --cache-size (forcing eviction) for a bounded
    time; every byte read is compared with `umoci unpack` of the source image;
  - repeated `kill -9` of a mount during heavy fetching, each followed by `lazyfs cache verify` (no bad
    chunk) and a full read of a new mount on the same cache;
  - de-duplication: two images sharing a base layer, and a file copied into another layer, store and fetch
    each chunk once; `lazyfs cache rm` removes one image and the other still reads correctly;
  - flash crowd: 8 mounts of one image in a registry (behind a recording proxy) started at once and read at
    once never request one byte of file data twice, and fetch (summed `lazyfs stats --json` counters)
    about what one mount fetches.

Images are small eStargz images (`lazyfs convert --chunk-size 64 KiB` of imagebuilder recipes), so each
file has many chunks. Every test is bounded (readers run in child processes with deadlines; polling, never
sleeping, for conditions).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from imagebuilder import directory, layer, pseudo_random, recipe, regular  # noqa: E402
from registry_harness import Registry  # noqa: E402

CHUNK = 64 << 10
BASE_FILES = [f"base/f{i}.bin" for i in range(6)]
COPY_PATH = "top/f0-copy.bin"      # same bytes as base/f0.bin, in another layer
FILE_SIZE = 1 << 20


def _base_layer():
    e = [directory("base")]
    for i, path in enumerate(BASE_FILES):
        e.append(regular(path, content=pseudo_random(FILE_SIZE + i * 4099, seed=100 + i)))
    return layer(e)


def image_a():
    return recipe("shared-cache-a", [_base_layer(), layer([
        directory("top"),
        regular("top/a.bin", content=pseudo_random(FILE_SIZE, seed=200)),
        regular(COPY_PATH, content=pseudo_random(FILE_SIZE, seed=100)),
    ])], tag="a")


def image_b():
    return recipe("shared-cache-b", [_base_layer(), layer([
        directory("top"),
        regular("top/b.bin", content=pseudo_random(FILE_SIZE, seed=300)),
    ])], tag="b")


FILES_A = BASE_FILES + ["top/a.bin", COPY_PATH]
FILES_B = BASE_FILES + ["top/b.bin"]

# Reads in a child process until a deadline: random ranges (or every file whole) from the mount, each
# compared with the same range of the reference tree. Prints one JSON line.
_WORKER = r"""
import json, os, random, sys, time
mnt, ref, files, seconds, seed, mode = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rng = random.Random(seed)
out = {"reads": 0, "bytes": 0, "mismatches": [], "errors": []}
deadline = time.monotonic() + seconds
def check(rel, off, n):
    with open(os.path.join(ref, rel), "rb") as f:
        f.seek(off); want = f.read(n)
    fd = os.open(os.path.join(mnt, rel), os.O_RDONLY)
    try:
        got = os.pread(fd, n, off)
    finally:
        os.close(fd)
    out["reads"] += 1; out["bytes"] += len(got)
    if got != want:
        out["mismatches"].append([rel, off, n])
try:
    if mode == "full":
        for rel in files:
            size = os.path.getsize(os.path.join(ref, rel))
            for off in range(0, size, 1 << 20):
                check(rel, off, 1 << 20)
    else:
        while time.monotonic() < deadline:
            rel = rng.choice(files)
            size = os.path.getsize(os.path.join(ref, rel))
            n = rng.choice([1, 4096, 65536, 200000])
            check(rel, rng.randrange(0, size), n)
except OSError as e:
    out["errors"].append(str(e))
print(json.dumps(out))
"""


def start_worker(mnt, ref, files, seconds, seed, mode="random"):
    return subprocess.Popen([sys.executable, "-c", _WORKER, mnt, ref, json.dumps(files), str(seconds), str(seed), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_worker(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"reads": 0, "bytes": 0, "mismatches": [], "errors": [f"worker hung > {timeout}s"]}
    try:
        return json.loads(out)
    except ValueError:
        return {"reads": 0, "bytes": 0, "mismatches": [], "errors": [f"worker crashed: {err.strip()}"]}


def mount_stats(m):
    proc = harness.run_lazyfs(["stats", "--json", m.mountpoint], timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"lazyfs stats failed: {proc.stderr}")
    return json.loads(proc.stdout)


def cache_cmd(cache_dir, *args):
    proc = harness.run_lazyfs(["cache", *args, "--json", "--cache-dir", cache_dir], timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"lazyfs cache {' '.join(args)} failed: {proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout)


class SharedCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        cls.classdir = tempfile.mkdtemp(prefix="lazyfs-it-shared.")
        cls.refs, cls.references, cls.layout_dirs = {}, {}, {}
        for name, rec in (("a", image_a()), ("b", image_b())):
            layout, tag = imagebuilder.build(rec)
            cls.references[name] = harness.reference_rootfs(layout, tag)
            converted = os.path.join(cls.classdir, f"estargz-{name}")
            proc = harness.run_lazyfs(["convert", "-q", "--chunk-size", str(CHUNK), imagebuilder.oci_ref(layout, tag),
                                       f"oci:{converted}:{tag}"], timeout=600)
            if proc.returncode != 0:
                raise AssertionError(f"lazyfs convert failed: {proc.stdout}\n{proc.stderr}")
            cls.refs[name] = f"oci:{converted}:{tag}"
            cls.layout_dirs[name] = converted

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.classdir, ignore_errors=True)

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    def mount(self, image, cache_dir, name=None, extra=()):
        m = self.mounts.mount(self.refs[image], name=name, cache_dir=cache_dir, extra=extra)
        self.assertTrue(m.ok, m.describe())
        return m

    def assertClean(self, result, context):
        self.assertFalse(result["errors"], f"{context}: read errors {result['errors'][:5]}")
        self.assertFalse(result["mismatches"], f"{context}: wrong bytes at {result['mismatches'][:5]}")

    def full_read(self, m, image):
        files = FILES_A if image == "a" else FILES_B
        r = finish_worker(start_worker(m.mountpoint, self.references[image], files, 0, 0, "full"), 60)
        self.assertClean(r, f"full read of {m.mountpoint}\nlog tail:\n{m.log_tail()}")
        return r

    # ---------------------------------------------------------------------------------------------

    def test_eight_mounts_tiny_cap_eviction(self):
        cache = self.mounts.tempdir("cache")
        cap = 2 << 20  # a quarter of one image: constant eviction
        mounts = [self.mount("ab"[i % 2], cache, name=f"m{i}", extra=["--cache-size", str(cap)]) for i in range(8)]
        workers = []
        for i, m in enumerate(mounts):
            image = "ab"[i % 2]
            for t in range(2):
                workers.append((m, start_worker(m.mountpoint, self.references[image], FILES_A if image == "a" else FILES_B,
                                                15, seed=i * 10 + t)))
        total = 0
        for m, w in workers:
            r = finish_worker(w, 60)
            self.assertClean(r, f"reader on {m.mountpoint}\nlog tail:\n{m.log_tail()}")
            total += r["reads"]
        self.assertGreater(total, 100)
        for m in mounts:
            self.assertTrue(m.daemon_alive(), f"daemon died\n{m.log_tail()}")
        s = cache_cmd(cache, "stats")
        self.assertEqual(s["max_bytes"], cap)
        self.assertGreater(s["evicted_chunks"], 0, s)
        # The cap holds up to the chunks of puts racing in other processes (each evicts before storing).
        self.assertLessEqual(s["chunk_bytes"], cap + 8 * CHUNK, s)
        gc = cache_cmd(cache, "gc", "--to", "512K")
        self.assertLessEqual(gc["chunk_bytes"], 512 << 10, gc)
        v = cache_cmd(cache, "verify")
        self.assertEqual(v["bad_chunks"], 0, v)
        self.assertFalse(v["counters_fixed"], v)
        self.full_read(mounts[0], "a")

    def test_kill9_during_fetching_leaves_a_good_cache(self):
        cache = self.mounts.tempdir("cache")
        for rnd in range(3):
            m = self.mount("a", cache, name=f"k{rnd}", extra=["--cache-size", "3M"])
            readers = [start_worker(m.mountpoint, self.references["a"], FILES_A, 30, seed=rnd * 7 + t)
                       for t in range(3)]
            # Kill once fetching is under way (a different point each round).
            want = 3 + rnd * 5
            harness.wait_for(lambda: mount_stats(m)["fetches"] >= want, 30, f"{want} fetches")
            for pid in m.pids:
                os.kill(pid, signal.SIGKILL)
            harness.wait_for(lambda: not any(harness.pid_alive(p) for p in m.pids), 10, "the daemon to die")
            for r in readers:
                finish_worker(r, 60)  # errors expected: the mount is gone
            self.assertTrue(harness.unmount(m.mountpoint))
            v = cache_cmd(cache, "verify")
            self.assertEqual(v["bad_chunks"], 0, v)
            self.assertEqual(v["bad_meta"], 0, v)
            self.assertFalse(v["counters_fixed"], v)
            fresh = self.mount("a", cache, name=f"r{rnd}", extra=["--cache-size", "3M"])
            self.full_read(fresh, "a")

    def test_dedup_shared_base_layer_and_copied_file(self):
        cache = self.mounts.tempdir("cache")
        a = self.mount("a", cache, name="a")
        self.full_read(a, "a")
        sa = mount_stats(a)
        # top/f0-copy.bin has the bytes of base/f0.bin: its chunks were fetched (and stored) once.
        unique_a = len(BASE_FILES) * (FILE_SIZE // CHUNK + 1) + (FILE_SIZE // CHUNK)
        self.assertLessEqual(sa["fetches"], unique_a, sa)
        s1 = cache_cmd(cache, "stats")
        self.assertEqual(s1["chunks"], sa["fetches"], (s1, sa))

        b = self.mount("b", cache, name="b")
        self.full_read(b, "b")
        sb = mount_stats(b)
        # Only top/b.bin is new to the host: the shared base layer is all cache hits.
        self.assertEqual(sb["fetches"], FILE_SIZE // CHUNK, sb)
        s2 = cache_cmd(cache, "stats")
        self.assertEqual(s2["chunks"], s1["chunks"] + FILE_SIZE // CHUNK, s2)

        rm = cache_cmd(cache, "rm", self.refs["a"])
        self.assertEqual(rm["chunks_removed"], s1["chunks"], rm)  # shared chunks go too (documented)
        self.assertGreaterEqual(rm["meta_removed"], 1, rm)
        self.assertEqual(cache_cmd(cache, "stats")["chunks"], FILE_SIZE // CHUNK)
        # Image b still reads correctly: its base chunks are fetched again.
        b2 = self.mount("b", cache, name="b2")
        self.full_read(b2, "b")

    def test_flash_crowd_fetches_each_chunk_once(self):
        # Through a real registry and a recording proxy, so every chunk request is seen: 8 mounts of one
        # image on one cache, started and read at once, must not fetch any byte of file data twice.
        with Registry() as registry, FaultProxy(registry.host) as proxy:
            pushed = harness.run_lazyfs(["push", "-q", "--insecure-registry", registry.host, self.refs["a"],
                                         f"docker://{registry.host}/shared-cache-a:a"], timeout=300)
            self.assertEqual(pushed.returncode, 0, pushed.stderr)
            ref = f"docker://{proxy.host}/shared-cache-a:a"
            flags = ["--insecure-registry", proxy.host]

            baseline = self.mounts.mount(ref, name="solo", cache_dir=self.mounts.tempdir("cache1"), extra=flags)
            self.assertTrue(baseline.ok, baseline.describe())
            self.full_read(baseline, "a")
            one = mount_stats(baseline)["bytes_fetched"]
            self.assertGreater(one, 0)
            proxy.reset_record()

            cache = self.mounts.tempdir("cache")
            n = 8
            crowd = [None] * n

            def start(i):
                crowd[i] = self.mounts.mount(ref, name=f"c{i}", cache_dir=cache, extra=flags)
            threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(harness.MOUNT_TIMEOUT)
            for m in crowd:
                self.assertTrue(m is not None and m.ok, m.describe() if m else "mount thread hung")
            workers = [start_worker(m.mountpoint, self.references["a"], FILES_A, 0, 0, "full") for m in crowd]
            for m, w in zip(crowd, workers):
                self.assertClean(finish_worker(w, 60), f"reader on {m.mountpoint}")
            stats = [mount_stats(m) for m in crowd]
            gets = proxy.blob_gets()

        fetched = sum(s["bytes_fetched"] for s in stats)
        fetches = sum(s["fetches"] for s in stats)
        blob_sizes = {name: os.path.getsize(os.path.join(self.layout_dirs["a"], "blobs", "sha256", name))
                      for name in os.listdir(os.path.join(self.layout_dirs["a"], "blobs", "sha256"))}
        # Chunk requests are the ranged GETs that stop before the blob's end (the footer and TOC reads of
        # each mount's image load reach the last byte, and are not chunk fetches).
        chunk_ranges = {}
        for g in gets:
            digest = g.path.rsplit("sha256:", 1)[1]
            self.assertTrue(g.range and g.range.startswith("bytes="), f"an unranged blob GET: {g}")
            start_byte, end_byte = (int(x) for x in g.range[len("bytes="):].split("-"))
            if end_byte == blob_sizes[digest] - 1:
                continue
            chunk_ranges.setdefault(digest, []).append((start_byte, end_byte))
        overlaps = []
        for digest, ranges in chunk_ranges.items():
            ranges.sort()
            for (s1, e1), (s2, e2) in zip(ranges, ranges[1:]):
                if s2 <= e1:
                    overlaps.append((digest[:12], (s1, e1), (s2, e2)))
        chunk_bytes = sum(e - s + 1 for ranges in chunk_ranges.values() for s, e in ranges)
        print(f"  flash crowd: {n} mounts fetched {fetched} bytes in {fetches} fetches; the registry saw "
              f"{sum(len(r) for r in chunk_ranges.values())} chunk requests, {chunk_bytes} bytes; one mount: "
              f"{one} bytes (ratio {fetched / one:.3f})", file=sys.stderr)
        self.assertTrue(chunk_ranges, "the crowd fetched no chunk from the registry")
        self.assertFalse(overlaps, f"bytes of a layer requested twice by the crowd: {overlaps[:5]}")
        self.assertLessEqual(fetched, 1.1 * one, stats)

if __name__ == "__main__":
    harness.parse_args()
    harness.main()
