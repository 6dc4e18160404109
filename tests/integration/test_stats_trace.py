#!/usr/bin/env python3
"""`lazyfs stats`, traces, replay and trace-driven prefetch, on real mounts.

Run as root:  python3 test_stats_trace.py --lazyfs /path/to/lazyfs

The image ("stats": three incompressible files in two layers) is converted to eStargz with 64 KiB
chunks, so lazy reads, chunk hits and misses are all visible. The scripted workload reads whole files
(unique bytes = file sizes, whatever the kernel's readahead does) plus three pages of a big file with
readahead off (POSIX_FADV_RANDOM: the kernel asks for exactly those pages), so `bytes_needed` is known
exactly. Checks:
  - stats JSON: reads, bytes_needed, needed_percent, files_bytes, top file, per-layer needed bytes,
    amplification = fetched / needed, latency quantiles present, and the table output;
  - `mount --trace` records the workload; `trace show` prints it; `trace replay` on the warm cache
    reports 100% hits and 0 bytes fetched; on an empty cache it reports misses and fetched bytes;
  - `trace merge` of the trace with itself is the same accesses;
  - `mount --prefetch TRACE` on an empty cache: once prefetch has finished (polled via stats), the
    workload has no foreground misses.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from imagebuilder import layer, pseudo_random, recipe, regular  # noqa: E402

CHUNK = 64 << 10
PAGE = 4096
WHOLE = {"app/main.bin": 300_001, "app/small.txt": 5_000}   # read whole
BIG, BIG_SIZE = "data/big.bin", 4 << 20                    # three pages read at known offsets
BIG_PAGES = [0, 100, 700]                                   # page indexes
UNREAD = "data/unread.bin"
FILES_BYTES = sum(WHOLE.values()) + BIG_SIZE + (1 << 20)
NEEDED = sum(WHOLE.values()) + len(BIG_PAGES) * PAGE

_WORKLOAD = r"""
import os, sys
root, whole, big, pages = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4].split(",")
for rel in whole:
    for _ in range(2):  # the second pass is served by the page cache
        with open(os.path.join(root, rel), "rb") as f:
            while f.read(1 << 20):
                pass
fd = os.open(os.path.join(root, big), os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for p in pages:
    assert len(os.pread(fd, 4096, int(p) * 4096)) == 4096
os.close(fd)
"""


def stats_recipe():
    return recipe("stats", [
        layer([regular(BIG, content=pseudo_random(BIG_SIZE, seed=11)),
               regular(UNREAD, content=pseudo_random(1 << 20, seed=12))]),
        layer([regular(path, content=pseudo_random(size, seed=i)) for i, (path, size) in enumerate(WHOLE.items())]),
    ])


class StatsTraceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        layout, tag = imagebuilder.build(stats_recipe())
        cls.classdir = tempfile.mkdtemp(prefix="lazyfs-it-stats.")
        converted = os.path.join(cls.classdir, "converted")
        proc = harness.run_lazyfs(["convert", "-q", "--chunk-size", str(CHUNK), imagebuilder.oci_ref(layout, tag),
                                   f"oci:{converted}:{tag}"], timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"lazyfs convert failed: {proc.stderr}")
        cls.ref = f"oci:{converted}:{tag}"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.classdir, ignore_errors=True)

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    # -- helpers -----------------------------------------------------------------------------------

    def mount(self, **kw):
        m = self.mounts.mount(self.ref, **kw)
        self.assertTrue(m.ok, m.describe())
        return m

    def workload(self, m):
        proc = subprocess.run([sys.executable, "-c", _WORKLOAD, m.mountpoint, ",".join(WHOLE), BIG,
                               ",".join(map(str, BIG_PAGES))], capture_output=True, text=True,
                              timeout=harness.READ_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr + m.log_tail())

    def stats(self, m):
        proc = harness.run_lazyfs(["stats", "--json", m.mountpoint])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def lazyfs_ok(self, args, timeout=harness.MOUNT_TIMEOUT):
        proc = harness.run_lazyfs(args, timeout=timeout)
        self.assertEqual(proc.returncode, 0, f"lazyfs {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def unmount_and_wait(self, m):
        """Unmount and wait for the daemon to exit (it flushes its trace after unmounting)."""
        self.assertTrue(harness.unmount(m.mountpoint))
        harness.wait_for(lambda: not any(harness.pid_alive(p) for p in m.pids), 60, "the daemon to exit")

    def record_trace(self, workdir):
        trace = os.path.join(workdir, "workload.trace")
        cache = self.mounts.tempdir("trace-cache")
        m = self.mount(name="record", cache_dir=cache, extra=["--trace", trace])
        self.workload(m)
        s = self.stats(m)
        self.unmount_and_wait(m)
        return trace, cache, s

    # -- tests -------------------------------------------------------------------------------------

    def test_stats_exact_for_scripted_workload(self):
        m = self.mount()
        s0 = self.stats(m)
        self.assertEqual(s0["version"], 2)
        self.assertEqual(s0["files_bytes"], FILES_BYTES)
        self.assertEqual(s0["bytes_needed"], 0)
        self.workload(m)
        s = self.stats(m)
        self.assertEqual(s["bytes_needed"], NEEDED)
        self.assertAlmostEqual(s["needed_percent"], 100.0 * NEEDED / FILES_BYTES, places=6)
        self.assertGreater(s["chunk_misses"], 0)
        self.assertGreater(s["bytes_fetched"], 0)
        self.assertAlmostEqual(s["amplification"], s["bytes_fetched"] / NEEDED, places=6)
        self.assertEqual(s["read_errors"], 0)
        self.assertEqual(s["not_lazy_layers"], [])
        # Every fetch is a chunk: incompressible data makes the wire bytes at least the chunk bytes read.
        self.assertGreaterEqual(s["bytes_fetched"], NEEDED)
        self.assertEqual(s["fetch_latency_us"]["count"], s["requests"])
        self.assertLessEqual(s["requests"], s["fetches"])
        self.assertGreater(s["fetch_latency_us"]["p99"], 0)
        self.assertLessEqual(s["fetch_latency_us"]["p50"], s["fetch_latency_us"]["p99"])
        top = {f["path"]: f for f in s["top_files"]}
        self.assertEqual(s["top_files"][0]["path"], "/app/main.bin")
        self.assertEqual(top["/app/main.bin"]["bytes_needed"], WHOLE["app/main.bin"])
        self.assertEqual(top["/app/small.txt"]["bytes_needed"], WHOLE["app/small.txt"])
        self.assertEqual(top["/" + BIG]["bytes_needed"], len(BIG_PAGES) * PAGE)
        self.assertNotIn("/" + UNREAD, top)
        self.assertEqual([layer["bytes_needed"] for layer in s["layers"]],
                         [len(BIG_PAGES) * PAGE, sum(WHOLE.values())])
        self.assertEqual(sum(layer["bytes_fetched"] for layer in s["layers"]), s["bytes_fetched"])
        # The second pass of the workload is all page cache: nothing more is needed or fetched.
        self.workload(m)
        again = self.stats(m)
        self.assertEqual(again["bytes_needed"], NEEDED)
        self.assertEqual(again["bytes_fetched"], s["bytes_fetched"])
        table = self.lazyfs_ok(["stats", m.mountpoint])
        for word in ("amplification", "needed", "fetch latency", "/app/main.bin"):
            self.assertIn(word, table)
        listing = json.loads(self.lazyfs_ok(["stats", "--all", "--json"]))
        self.assertIn(os.path.realpath(m.mountpoint), [x["mountpoint"] for x in listing])

    def test_trace_record_show_merge_replay(self):
        workdir = self.mounts.tempdir("trace")
        trace, cache, recorded = self.record_trace(workdir)
        shown = json.loads(self.lazyfs_ok(["trace", "show", "--json", trace]))
        self.assertEqual(shown["manifest_digest"], recorded["manifest_digest"])
        paths = {r["path"] for r in shown["records"]}
        self.assertEqual(paths, set(WHOLE) | {BIG})
        self.assertEqual(len(shown["records"]), recorded["reads"])
        self.assertEqual(sum(r["miss"] for r in shown["records"]) > 0, True)
        self.assertIn("/app/main.bin", self.lazyfs_ok(["trace", "show", trace]))
        merged = os.path.join(workdir, "merged.trace")
        self.lazyfs_ok(["trace", "merge", "-o", merged, trace, trace])
        merged_shown = json.loads(self.lazyfs_ok(["trace", "show", "--json", merged]))
        self.assertEqual(len(merged_shown["records"]),
                         len({(r["path"], r["offset"], r["length"]) for r in shown["records"]}))

        # Warm cache: the repeat run hits everything and fetches nothing.
        warm = json.loads(self.lazyfs_ok(["trace", "replay", trace, "--image", self.ref, "--cache-dir", cache, "--json"]))
        self.assertEqual(warm["reads_failed"], 0)
        self.assertEqual(warm["reads_ok"], len(shown["records"]))
        self.assertGreater(warm["chunk_hits"], 0)
        self.assertEqual(warm["chunk_misses"], 0)
        self.assertEqual(warm["hit_ratio"], 1.0)
        self.assertEqual(warm["bytes_fetched"], 0)
        # Cold cache: the same reads miss and fetch.
        cold = json.loads(self.lazyfs_ok(["trace", "replay", trace, "--image", self.ref, "--cache-dir",
                                          self.mounts.tempdir("cold-cache"), "--json"]))
        self.assertGreater(cold["chunk_misses"], 0)
        self.assertGreater(cold["bytes_fetched"], 0)

    def test_prefetch_removes_foreground_misses(self):
        workdir = self.mounts.tempdir("prefetch")
        trace, _, recorded = self.record_trace(workdir)
        self.assertGreater(recorded["chunk_misses"], 0)
        m = self.mount(name="prefetched", extra=["--prefetch", trace, "--prefetch-threads", "4"])
        done = harness.wait_for(lambda: (lambda s: s if s["prefetch"]["finished"] else None)(self.stats(m)),
                                120, "prefetch to finish")
        p = done["prefetch"]
        self.assertEqual(p["errors"], 0)
        self.assertGreater(p["planned_chunks"], 0)
        self.assertEqual(p["done_chunks"], p["planned_chunks"])
        self.assertEqual(p["fetched_chunks"], p["planned_chunks"])
        self.assertEqual(done["chunk_misses"], 0)  # no foreground read yet
        self.workload(m)
        s = self.stats(m)
        self.assertLessEqual(s["chunk_misses"], 1, f"foreground misses after prefetch: {s['chunk_misses']} "
                                                    f"(without prefetch: {recorded['chunk_misses']})")
        self.assertEqual(s["bytes_needed"], NEEDED)

    def test_prefetch_auto_without_registry_mounts_anyway(self):
        m = self.mount(extra=["--prefetch", "auto"])
        self.assertIsNone(self.stats(m)["prefetch"])
        self.assertIn("not a docker:// image", m.log())

    def test_bad_prefetch_trace_fails_the_mount_cleanly(self):
        bad = os.path.join(self.mounts.tempdir("bad"), "bad.trace")
        with open(bad, "wb") as f:
            f.write(b"LZYTRACE\x01garbage")
        m = self.mounts.mount(self.ref, extra=["--prefetch", bad])
        self.assertNotEqual(m.proc.returncode, 0)
        self.assertIn("trace", m.proc.stderr)
        self.assertFalse(harness.is_mounted(m.mountpoint))


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
