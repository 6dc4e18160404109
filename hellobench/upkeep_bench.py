#!/usr/bin/env python3
"""Read-path upkeep benchmark (issue: code health, items 3 and 4): what cache eviction and plain layers cost
the reads that happen while they run. Prints the figures; asserts nothing (a shared 2-core machine is noisy).

    python3 hellobench/upkeep_bench.py --lazyfs build/tools/lazyfs [--reads 2000]

Figures:
  cold 4 KiB at the cap   4 threads each read whole 4 KiB files (one chunk each) that are not cached, from
                          an eStargz OCI layout on local disk, through a mount whose --cache-size is a
                          quarter of the files' bytes: the cache sits at its cap and evicts all along.
                          p50 / p99 / p99.9 / max latency of one read(2) and the evictions that happened.
  plain layer, 8 readers  a tar+gzip (non-eStargz) layer in docker-registry behind a counting proxy; after
                          the mount indexed it, every chunk is evicted (`lazyfs cache gc --to 0`) and 8
                          threads read one 8 MiB file of the layer at once, thread i starting at MiB i (so
                          they miss different chunks): wall time, the blob GETs the registry saw and their
                          body bytes (the layer is ~40 MiB).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from imagebuilder import directory, layer, pseudo_random, recipe, regular  # noqa: E402
from registry_harness import Registry  # noqa: E402

MiB = 1 << 20
SMALL_COUNT = 8000
SMALL_SIZE = 4096


def small_files_image():
    entries = [directory("d")] + [directory(f"d/{i:02d}") for i in range(80)]
    entries += [regular(f"d/{i % 80:02d}/f{i:05d}", content=pseudo_random(SMALL_SIZE, seed=5000 + i))
                for i in range(SMALL_COUNT)]
    return recipe("upkeep-small", [layer(entries, level=1)], tag="bench")


def plain_layer_image():
    entries = [directory("data"), regular("data/target.bin", content=pseudo_random(8 * MiB, seed=77))]
    entries += [regular(f"data/other{i}.bin", content=pseudo_random(4 * MiB, seed=80 + i)) for i in range(8)]
    return recipe("upkeep-plain", [layer(entries, level=1)], tag="bench")


def lazyfs(*args, timeout=600):
    proc = harness.run_lazyfs(list(args), timeout=timeout)
    assert proc.returncode == 0, f"lazyfs {' '.join(args)}: {proc.stderr}"
    return proc


def cache_stats(cache):
    return json.loads(lazyfs("cache", "stats", "--json", "--cache-dir", cache).stdout)


def pct(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def cold_reads_at_cap(ms, reads_per_thread):
    layout, tag = imagebuilder.build(small_files_image())
    converted = ms.tempdir("small-estargz")
    lazyfs("convert", "-q", imagebuilder.oci_ref(layout, tag), f"oci:{converted}:{tag}", timeout=900)
    cache = ms.tempdir("cache-cap")
    cap = SMALL_COUNT * SMALL_SIZE // 4
    m = ms.mount(f"oci:{converted}:{tag}", name="cap", cache_dir=cache, extra=["--cache-size", str(cap)])
    assert m.ok, m.describe()
    paths = [os.path.join(m.mountpoint, f"d/{i % 80:02d}/f{i:05d}") for i in range(SMALL_COUNT)]
    for p in paths[: SMALL_COUNT // 4]:  # fill the cache to its cap first
        with open(p, "rb") as f:
            f.read()
    before = cache_stats(cache)
    order = list(range(SMALL_COUNT // 4, SMALL_COUNT))
    random.Random(7).shuffle(order)
    threads = 4
    per = min(reads_per_thread, len(order) // threads)
    latencies = [[] for _ in range(threads)]

    def work(t):
        for i in order[t * per:(t + 1) * per]:
            t0 = time.perf_counter_ns()
            fd = os.open(paths[i], os.O_RDONLY)
            try:
                if len(os.read(fd, SMALL_SIZE)) != SMALL_SIZE:
                    raise AssertionError("short read")
            finally:
                os.close(fd)
            latencies[t].append((time.perf_counter_ns() - t0) / 1000)
    started = time.perf_counter()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - started
    after = cache_stats(cache)
    lat = sorted(x for per_thread in latencies for x in per_thread)
    evicted = after["evicted_chunks"] - before["evicted_chunks"]
    print(f"cold 4 KiB reads at the cap ({cap // 1024} KiB cap, {threads} threads, {len(lat)} reads, "
          f"{len(lat) / elapsed:.0f} reads/s): p50 {pct(lat, 0.5):8.0f} us  p99 {pct(lat, 0.99):8.0f} us  "
          f"p99.9 {pct(lat, 0.999):8.0f} us  max {lat[-1]:8.0f} us; {evicted} chunks evicted meanwhile; "
          f"chunk_bytes {after['chunk_bytes']} (cap {after['max_bytes']})")


def plain_layer_readers(ms, readers):
    layout, tag = imagebuilder.build(plain_layer_image())
    with Registry() as reg, FaultProxy(reg.host) as proxy:
        lazyfs("push", "-q", "--insecure-registry", reg.host, imagebuilder.oci_ref(layout, tag),
               f"docker://{reg.host}/plain:bench")
        cache = ms.tempdir("cache-plain")
        m = ms.mount(f"docker://{proxy.host}/plain:bench", name="plain", cache_dir=cache,
                     extra=["--insecure-registry", proxy.host])
        assert m.ok, m.describe()
        lazyfs("cache", "gc", "--to", "0", "--cache-dir", cache)
        proxy.reset_record()
        target = os.path.join(m.mountpoint, "data/target.bin")
        errors = []

        def read(i):
            try:
                with open(target, "rb") as f:
                    f.seek(i * MiB % (8 * MiB))
                    while f.read(MiB):
                        pass
            except OSError as e:
                errors.append(e)
        started = time.perf_counter()
        ts = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.perf_counter() - started
        gets = proxy.blob_gets()
        body = sum(e.body_bytes for e in gets)
        print(f"plain layer, {readers} concurrent first reads of an 8 MiB file after eviction: {elapsed:.2f} s, "
              f"{len(gets)} blob GETs, {body / MiB:.1f} MiB on the wire, {len(errors)} failed reads")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--reads", type=int, default=1500, help="cold reads per thread (at most 1500)")
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--only", choices=["cap", "plain"], help="run one of the two measurements")
    args = ap.parse_args()
    harness.LAZYFS = os.path.abspath(args.lazyfs)
    os.environ["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
    ms = harness.MountSet()
    try:
        if args.only in (None, "cap"):
            cold_reads_at_cap(ms, args.reads)
        if args.only in (None, "plain"):
            plain_layer_readers(ms, args.readers)
    finally:
        ms.cleanup()


if __name__ == "__main__":
    main()
