#!/usr/bin/env python3
"""Core mount benchmark (issue: core mount): mount time, sequential read throughput and metadata walks of
lazyfs against the same image unpacked by `umoci unpack` on the local disk. Prints the figures; asserts
nothing (goals are read off the output, not enforced, because a shared 2-core machine is noisy).

    python3 hellobench/core_bench.py --lazyfs build/tools/lazyfs [--runs 3]

Figures:
  mount time      `lazyfs mount` of the largest test image (features: 20,000-entry dir, 200 MiB sparse
                  file, ...), with an empty cache and again with its merged tree cached
  seq read 1 GiB  `big` image: cold from the OCI layout (fetch+inflate+verify+store), then from the LMDB
                  cache with the page cache dropped, then warm (page cache); native = the unpacked rootfs
  find 20k        `find` over the 20,000-entry directory, page cache dropped and warm, vs native
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import imagebuilder  # noqa: E402
import recipes  # noqa: E402

LAZYFS = None


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def read_file(path, block=1 << 20):
    with open(path, "rb", buffering=0) as f:
        while f.read(block):
            pass


def find(path):
    subprocess.run(["find", path], check=True, stdout=subprocess.DEVNULL)


def lazyfs(*args):
    subprocess.run([LAZYFS, *args], check=True)


class Mounted:
    def __init__(self, ref, cache):
        self.dir = tempfile.mkdtemp(prefix="lazyfs-bench-")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        self.seconds = timed(lambda: lazyfs("mount", "--cache-dir", cache, "--log-file",
                                            os.path.join(self.dir, "log"), ref, self.mnt))

    def close(self):
        lazyfs("umount", self.mnt)
        os.rmdir(self.mnt)


def converted(layout, tag):
    """The eStargz version of an image, converted once and kept next to it."""
    out = layout + "-estargz"
    if not os.path.exists(os.path.join(out, "index.json")):
        lazyfs("convert", "-q", f"oci:{layout}:{tag}", f"oci:{out}:{tag}")
    return f"oci:{out}:{tag}"


def unpacked(layout, tag):
    key = open(os.path.join(layout, "index.json")).read()
    import hashlib
    root = imagebuilder.cached_dir("references", hashlib.sha256(key.encode()).hexdigest(),
                                   lambda tmp: subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}",
                                                               os.path.join(tmp, "bundle")], check=True,
                                                              stdout=subprocess.DEVNULL))
    return os.path.join(root, "bundle", "rootfs")


def median(xs):
    return statistics.median(xs)


def bench_mount(runs):
    layout, tag = imagebuilder.build(recipes.features())
    ref = converted(layout, tag)
    cold, cached = [], []
    for _ in range(runs):
        cache = tempfile.mkdtemp(prefix="lazyfs-bench-cache-")
        m = Mounted(ref, cache)
        cold.append(m.seconds)
        m.close()
        m = Mounted(ref, cache)
        cached.append(m.seconds)
        m.close()
        subprocess.run(["rm", "-rf", cache])
    print(f"mount time (features image, eStargz): empty cache {median(cold) * 1000:.0f} ms, "
          f"tree cached {median(cached) * 1000:.0f} ms (median of {runs})")
    return layout, tag, ref


def bench_find(layout, tag, ref, runs):
    native = unpacked(layout, tag)
    rel = "many"
    cache = tempfile.mkdtemp(prefix="lazyfs-bench-cache-")
    m = Mounted(ref, cache)
    try:
        rows = {}
        for name, root in (("native", native), ("lazyfs", m.mnt)):
            cold, warm = [], []
            for _ in range(runs):
                drop_caches()
                cold.append(timed(lambda: find(os.path.join(root, rel))))
                warm.append(timed(lambda: find(os.path.join(root, rel))))
            rows[name] = (median(cold), median(warm))
        for i, label in enumerate(("page cache dropped", "warm")):
            n, l = rows["native"][i], rows["lazyfs"][i]
            print(f"find over 20,000 entries, {label}: native {n * 1000:.1f} ms, lazyfs {l * 1000:.1f} ms, "
                  f"ratio {l / n:.2f}x")
    finally:
        m.close()
        subprocess.run(["rm", "-rf", cache])


def bench_read(runs):
    layout, tag = imagebuilder.build(recipes.big())
    ref = converted(layout, tag)
    native = os.path.join(unpacked(layout, tag), recipes.BIG_PATH)
    size = os.path.getsize(native)
    gb = size / 1e9
    results = {"native dropped": [], "native warm": [], "lazyfs cold fetch": [], "lazyfs from cache": [],
               "lazyfs warm": []}
    for _ in range(runs):
        drop_caches()
        results["native dropped"].append(timed(lambda: read_file(native)))
        results["native warm"].append(timed(lambda: read_file(native)))
        cache = tempfile.mkdtemp(prefix="lazyfs-bench-cache-")
        m = Mounted(ref, cache)
        path = os.path.join(m.mnt, recipes.BIG_PATH)
        drop_caches()
        results["lazyfs cold fetch"].append(timed(lambda: read_file(path)))
        m.close()
        m = Mounted(ref, cache)
        path = os.path.join(m.mnt, recipes.BIG_PATH)
        drop_caches()
        results["lazyfs from cache"].append(timed(lambda: read_file(path)))
        results["lazyfs warm"].append(timed(lambda: read_file(path)))
        m.close()
        subprocess.run(["rm", "-rf", cache])
    for name, xs in results.items():
        print(f"seq read 1 GiB, {name:18}: {gb / median(xs):6.2f} GB/s ({median(xs):.2f} s)")
    print(f"ratio lazyfs/native, page cache dropped (lazyfs from its cache): "
          f"{median(results['native dropped']) / median(results['lazyfs from cache']):.2f}x of native speed")
    print(f"ratio lazyfs/native, warm: {median(results['native warm']) / median(results['lazyfs warm']):.2f}x "
          f"of native speed")


def main():
    global LAZYFS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lazyfs", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["mount", "find", "read"])
    args = parser.parse_args()
    LAZYFS = os.path.abspath(args.lazyfs)
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; noisy shared host, figures are indicative")
    if args.only in (None, "mount", "find"):
        layout, tag, ref = bench_mount(args.runs)
        if args.only in (None, "find"):
            bench_find(layout, tag, ref, args.runs)
    if args.only in (None, "read"):
        bench_read(args.runs)


if __name__ == "__main__":
    main()
