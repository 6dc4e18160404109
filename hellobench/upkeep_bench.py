#!/usr/bin/env python3
"""Read-path upkeep benchmark (issue: code health, items 3 and 4): what cache eviction and plain layers cost
the reads that happen while they run. Prints the figures; asserts nothing (a shared 2-core machine is noisy).

    python3 hellobench/upkeep_bench.py --lazyfs build/tools/lazyfs [--reads 2000]

Figures:
  cold 4 KiB at the cap   --threads (default 1) read whole 4 KiB files (one chunk each) that are not cached, from
                          an eStargz OCI layout on local disk (4 KiB chunks), through a mount whose cache
                          was filled to its --cache-size with ~43,000 chunks (a 160 MiB file and a quarter
                          of the small files): the cache sits at its cap and evicts all along.
                          p50 / p99 / p99.9 / max latency of one open+read(2) and the evictions that
                          happened; the same reads with a cap far above the files (no eviction) first,
                          for comparison.
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
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import imagebuilder  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from parallel import run_threads  # noqa: E402
from imagebuilder import directory, layer, pseudo_random, recipe, regular  # noqa: E402
from registry_harness import Registry  # noqa: E402

MiB = 1 << 20
SMALL_COUNT = 8000
SMALL_SIZE = 4096


FILLER_SIZE = 160 * MiB  # 40,960 chunks of 4 KiB: a cache with many chunks makes an eviction scan cost


def small_files_image():
    entries = [directory("d"), regular("filler.bin", content=pseudo_random(FILLER_SIZE, seed=4999))]
    entries += [directory(f"d/{i:02d}") for i in range(80)]
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


def small_files_estargz(ms):
    layout, tag = imagebuilder.build(small_files_image())
    converted = ms.tempdir("small-estargz")
    lazyfs("convert", "-q", "--chunk-size", str(SMALL_SIZE), imagebuilder.oci_ref(layout, tag),
           f"oci:{converted}:{tag}", timeout=1800)
    return f"oci:{converted}:{tag}"


def cold_round(ms, ref, reads, at_cap, threads, round_no):
    """One round on a fresh cache: latencies (us, sorted), reads/s and chunks evicted during the reads."""
    name = f"{'cap' if at_cap else 'nocap'}{round_no}"
    cache = ms.tempdir(f"cache-{name}")
    cap = FILLER_SIZE + SMALL_COUNT * SMALL_SIZE // 4 if at_cap else 1 << 30
    m = ms.mount(ref, name=name, cache_dir=cache, extra=["--cache-size", str(cap)])
    assert m.ok, m.describe()
    paths = [os.path.join(m.mountpoint, f"d/{i % 80:02d}/f{i:05d}") for i in range(SMALL_COUNT)]
    with open(os.path.join(m.mountpoint, "filler.bin"), "rb") as f:  # fill the cache to its cap first
        while f.read(MiB):
            pass
    for p in paths[: SMALL_COUNT // 4]:
        with open(p, "rb") as f:
            f.read()
    before = cache_stats(cache)
    order = list(range(SMALL_COUNT // 4, SMALL_COUNT))
    random.Random(7 + round_no).shuffle(order)
    per = min(reads, len(order)) // threads
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
    elapsed = run_threads(work, threads)
    evicted = cache_stats(cache)["evicted_chunks"] - before["evicted_chunks"]
    harness.unmount(m.mountpoint)
    lat = sorted(x for per_thread in latencies for x in per_thread)
    return lat, len(lat) / elapsed, evicted, cap


def cold_reads(ms, ref, reads, at_cap, threads, runs):
    """Cold 4 KiB reads with the cache at its cap (evicting all along) or, for comparison, far below it;
    `runs` rounds on fresh caches, each printed, then the medians (the machine is noisy)."""
    where = "at the cap" if at_cap else "below the cap"
    rows = []
    for r in range(runs):
        lat, rate, evicted, cap = cold_round(ms, ref, reads, at_cap, threads, r)
        rows.append((pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999), lat[-1], rate, evicted))
        print(f"  {where:13s} round {r}: {len(lat)} reads, {rate:5.0f}/s  p50 {rows[-1][0]:6.0f} us  "
              f"p99 {rows[-1][1]:6.0f} us  p99.9 {rows[-1][2]:6.0f} us  max {rows[-1][3]:6.0f} us  "
              f"evicted {evicted}")
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"cold 4 KiB reads {where:13s} ({cap // 1024} KiB cap, {threads} thread(s), median of {runs}): "
          f"p50 {med[0]:.0f} us  p99 {med[1]:.0f} us  p99.9 {med[2]:.0f} us  max {med[3]:.0f} us  "
          f"{med[4]:.0f} reads/s  {med[5]:.0f} chunks evicted")


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
        elapsed = run_threads(read, readers)
        gets = proxy.blob_gets()
        body = sum(e.body_bytes for e in gets)
        print(f"plain layer, {readers} concurrent first reads of an 8 MiB file after eviction: {elapsed:.2f} s, "
              f"{len(gets)} blob GETs, {body / MiB:.1f} MiB on the wire, {len(errors)} failed reads")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--reads", type=int, default=6000, help="cold reads in all (at most 6000)")
    ap.add_argument("--threads", type=int, default=1, help="reader threads for the cold reads")
    ap.add_argument("--runs", type=int, default=5, help="rounds of cold reads, each on a fresh cache")
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--only", choices=["cap", "plain"], help="run one of the two measurements")
    args = ap.parse_args()
    harness.LAZYFS = os.path.abspath(args.lazyfs)
    os.environ["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
    ms = harness.MountSet()
    try:
        if args.only in (None, "cap"):
            ref = small_files_estargz(ms)
            cold_reads(ms, ref, args.reads, at_cap=False, threads=args.threads, runs=args.runs)
            cold_reads(ms, ref, args.reads, at_cap=True, threads=args.threads, runs=args.runs)
        if args.only in (None, "plain"):
            plain_layer_readers(ms, args.readers)
    finally:
        ms.cleanup()


if __name__ == "__main__":
    main()
