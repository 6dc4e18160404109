#!/usr/bin/env python3
"""Shared-cache benchmark (issue 4): flash crowd and cached random reads. Prints the figures; asserts
nothing (goals are read off the output: a shared 2-core machine is noisy).

    python3 hellobench/cache_bench.py --lazyfs build/tools/lazyfs [--mounts 16]

Figures:
  flash crowd    N mounts of one eStargz image (64 MiB of incompressible files, `lazyfs convert` default
                 chunk size) started at once on one empty cache and all reading every file at once; the
                 summed `lazyfs stats --json` bytes_fetched over the same figure for one mount alone
                 (goal <= 1.1x)
  random 4 KiB   4 threads of 4 KiB preads at random 4 KiB-aligned offsets over the image's files:
                 through a mount with every chunk in the cache and the page cache dropped, vs the same
                 reads on the `umoci unpack` rootfs with the page cache dropped; ops/s ratio (goal >= 0.5x)
                 and p50/p99 latency of each
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from parallel import run_threads  # noqa: E402
from imagebuilder import directory, layer, pseudo_random, recipe, regular  # noqa: E402

FILES = [f"data/f{i:02d}.bin" for i in range(16)]
FILE_SIZE = 4 << 20


def bench_image():
    return recipe("cache-bench", [layer([directory("data")] + [
        regular(p, content=pseudo_random(FILE_SIZE, seed=900 + i)) for i, p in enumerate(FILES)], level=1)],
        tag="bench")


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_all(root):
    for rel in FILES:
        with open(os.path.join(root, rel), "rb") as f:
            while f.read(1 << 20):
                pass


def stats(m):
    proc = harness.run_lazyfs(["stats", "--json", m.mountpoint], timeout=30)
    return json.loads(proc.stdout)


def flash_crowd(ms, ref, n):
    solo = ms.mount(ref, name="solo", cache_dir=ms.tempdir("cache-solo"))
    assert solo.ok, solo.describe()
    read_all(solo.mountpoint)
    one = stats(solo)["bytes_fetched"]

    cache = ms.tempdir("cache-crowd")
    crowd = [None] * n

    def start(i):
        crowd[i] = ms.mount(ref, name=f"c{i}", cache_dir=cache)
    elapsed = run_threads(start, n)
    assert all(m.ok for m in crowd), [m.describe() for m in crowd if not m.ok]
    elapsed += run_threads(lambda i: read_all(crowd[i].mountpoint), n)
    per = [stats(m) for m in crowd]
    total = sum(s["bytes_fetched"] for s in per)
    fetches = sum(s["fetches"] for s in per)
    print(f"flash crowd: {n} cold mounts fetched {total} bytes in {fetches} chunk fetches ({elapsed:.1f} s);"
          f" one mount alone: {one} bytes -> ratio {total / one:.3f}x (goal <= 1.1x)")
    return cache


def random_reads(root, threads, per_thread, seed):
    """4 KiB preads at random aligned offsets; returns (ops/s, latencies in µs)."""
    latencies = [[] for _ in range(threads)]
    fds = [os.open(os.path.join(root, rel), os.O_RDONLY) for rel in FILES]

    def work(t):
        rng = random.Random(seed + t)
        lat = latencies[t]
        for _ in range(per_thread):
            fd = fds[rng.randrange(len(fds))]
            off = rng.randrange(FILE_SIZE // 4096) * 4096
            t0 = time.perf_counter_ns()
            if len(os.pread(fd, 4096, off)) != 4096:
                raise AssertionError("short read")
            lat.append((time.perf_counter_ns() - t0) / 1000)
    drop_caches()
    elapsed = run_threads(work, threads)
    for fd in fds:
        os.close(fd)
    all_lat = sorted(x for lat in latencies for x in lat)
    return threads * per_thread / elapsed, all_lat


def pct(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--mounts", type=int, default=16)
    ap.add_argument("--reads", type=int, default=3000, help="4 KiB reads per thread")
    args = ap.parse_args()
    harness.LAZYFS = os.path.abspath(args.lazyfs)

    layout, tag = imagebuilder.build(bench_image())
    rootfs = harness.reference_rootfs(layout, tag)
    work = tempfile.mkdtemp(prefix="lazyfs-cache-bench.")
    ms = harness.MountSet()
    try:
        converted = os.path.join(work, "estargz")
        proc = harness.run_lazyfs(["convert", "-q", imagebuilder.oci_ref(layout, tag), f"oci:{converted}:{tag}"],
                                  timeout=900)
        assert proc.returncode == 0, proc.stderr
        ref = f"oci:{converted}:{tag}"

        cache = flash_crowd(ms, ref, args.mounts)

        m = ms.mount(ref, name="cached", cache_dir=cache)  # every chunk is in this cache already
        assert m.ok, m.describe()
        read_all(m.mountpoint)
        before = stats(m)["fetches"]
        results = {}
        for name, root in (("rootfs", rootfs), ("lazyfs", m.mountpoint)):
            random_reads(root, 4, 200, seed=1)  # open paths, settle the mount
            results[name] = random_reads(root, 4, args.reads, seed=42)
        assert stats(m)["fetches"] == before, "the cached run fetched"
        for name, (ops, lat) in results.items():
            print(f"random 4 KiB x4 threads, page cache dropped, {name:7s}: {ops:9.0f} ops/s  "
                  f"p50 {pct(lat, 0.5):7.1f} us  p99 {pct(lat, 0.99):8.1f} us")
        print(f"random 4 KiB ratio lazyfs/rootfs: {results['lazyfs'][0] / results['rootfs'][0]:.2f}x (goal >= 0.5x)")
    finally:
        ms.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
