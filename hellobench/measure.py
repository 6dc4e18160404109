"""Measure one HelloBench image (all figures of one report row). Every step raises on failure; the
runner records the error and moves on to the next image.

Steps, in order (times are seconds from the first command of a start until the task is ready):
  push       `skopeo copy` of the plain image and `lazyfs push` of its eStargz form to the registry;
  full       page cache dropped, `skopeo copy docker://… oci:…` + `umoci unpack` + `crun run` (= docker pull + run);
  native     on that unpacked rootfs: caches dropped, run (fincore then gives the bytes the task read),
             and again with a warm page cache (median of WARM_RUNS runs);
  cold       empty lazyfs cache, page cache dropped: `lazyfs run --trace … docker://…`, which mounts the
             image (resolve, mount, tree build, fetches); stats of the mount it keeps (--keep-mount);
  warm_kept  further `lazyfs run`s while that mount lingers (no resolve, no mount; median of WARM_RUNS);
             stats as the difference;
  warm       the same cache again, a new mount (the kept one ended first), warm page cache;
  prefetch   empty cache, page cache dropped, `lazyfs run --prefetch TRACE` on a new mount;
  replay     `lazyfs trace replay` of the cold trace against the cold run's cache (repeat run) and
             against a host cache holding the images measured before (cross-image sharing);
  concurrent (one image) 16 `lazyfs run` at once on an empty cache: time until all ready, bytes fetched.
"""

import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import time

import fincore
import sandbox


# Warm starts take tens of milliseconds, where one run is mostly noise on a shared machine: the native and
# the mount-kept warm start are the median of this many runs each.
WARM_RUNS = 5


class Context:
    def __init__(self, lazyfs, registry_host, work, host_cache, log_file, prefetch=True, concurrency=16):
        self.lazyfs, self.registry_host, self.work = lazyfs, registry_host, work
        self.host_cache, self.log_file, self.prefetch, self.concurrency = host_cache, log_file, prefetch, concurrency


def _timed(cmd, timeout=1800):
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {proc.stderr.strip()[-800:]}")
    return time.monotonic() - t0


def _manifest_hex(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)["manifests"][0]["digest"].split(":", 1)[1]


def _replay(ctx, trace, ref, cache):
    proc = subprocess.run([ctx.lazyfs, "trace", "replay", trace, "--image", ref, "--cache-dir", cache, "--json"],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"lazyfs trace replay failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


def _hit_ratio(report):
    hits, misses = report.get("chunk_hits", report.get("hits")), report.get("chunk_misses", report.get("misses"))
    if isinstance(hits, int) and isinstance(misses, int) and hits + misses:
        return hits / (hits + misses)
    return report.get("hit_ratio", report.get("cache_hit_ratio"))


def measure(ctx, image, built, concurrent=False, log=print):
    r = {"name": image.name, "category": image.category, "packages": image.packages}
    d = os.path.join(ctx.work, image.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    host_net = image.ready[0] == "port"
    network = "host" if host_net else "none"
    repo = f"{ctx.registry_host}/hb-{image.name}"
    plain_ref, lazy_ref = f"docker://{repo}:plain", f"docker://{repo}:estargz"
    layout_ref = f"oci:{built.estargz}:{built.tag}"
    r["image_bytes_plain"] = sum(os.path.getsize(os.path.join(built.plain, "blobs", "sha256", b))
                                 for b in os.listdir(os.path.join(built.plain, "blobs", "sha256")))

    # push
    r["push_plain_s"] = _timed(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{built.plain}:{built.tag}",
                                plain_ref])
    r["push_estargz_s"] = _timed([ctx.lazyfs, "push", "-q", "--insecure-registry", ctx.registry_host, layout_ref,
                                  lazy_ref])
    log(f"  {image.name}: pushed (plain {r['push_plain_s']:.1f}s, estargz {r['push_estargz_s']:.1f}s)")

    # full pull + run
    pulled, bundle = os.path.join(d, "pulled"), os.path.join(d, "bundle")
    fincore.drop_caches()
    t0 = time.monotonic()
    _timed(["skopeo", "copy", "-q", "--src-tls-verify=false", plain_ref, f"oci:{pulled}:{built.tag}"])
    r["full_pull_s"] = time.monotonic() - t0
    sandbox.crun_bundle(pulled, built.tag, bundle, image.cmd, host_net)
    r["full_unpack_s"] = time.monotonic() - t0 - r["full_pull_s"]
    s = sandbox.crun_start(bundle, f"hb-{os.getpid()}-{image.name}-full", image.ready, image.timeout, t0=t0)
    s.stop()
    r["full_s"] = s.seconds
    r["full_run_s"] = s.seconds - r["full_pull_s"] - r["full_unpack_s"]
    log(f"  {image.name}: full pull+run {r['full_s']:.2f}s")

    # native: fresh bundle copy of the unpacked rootfs per run (tasks write into it)
    fincore.drop_caches()
    s = sandbox.crun_start(bundle, f"hb-{os.getpid()}-{image.name}-n1", image.ready, image.timeout)
    s.stop()
    r["native_cold_s"] = s.seconds
    r["fincore_bytes"] = fincore.resident_bytes(os.path.join(bundle, "rootfs"))
    runs = []
    for i in range(WARM_RUNS):
        s = sandbox.crun_start(bundle, f"hb-{os.getpid()}-{image.name}-n{i + 2}", image.ready, image.timeout)
        s.stop()
        runs.append(s.seconds)
    r["native_warm_runs"] = runs
    r["native_warm_s"] = statistics.median(runs)
    shutil.rmtree(pulled, ignore_errors=True)

    lazy = sandbox.LazyImage(ctx.lazyfs, _manifest_hex(built.estargz), lazy_ref, ctx.registry_host, ctx.log_file)

    def lazy_start(cache, key, trace=None, prefetch=None, drop=True, new_mount=True, runs=1):
        """`lazyfs run` until ready, `runs` times (the median is kept, stats are those of all runs together);
        new_mount: end the kept mount first, so the (single) run mounts the image."""
        if new_mount:
            lazy.end()
        elif not lazy.mounted():
            raise RuntimeError(f"{key}: the kept mount of {image.name} is gone")
        before = None if new_mount else _slim(lazy.stats())
        if drop:
            fincore.drop_caches()
        times = []
        for _ in range(runs):
            t0 = time.monotonic()
            s = sandbox.start_until_ready(lazy.run_cmd(cache, image.cmd, network, trace=trace, prefetch=prefetch),
                                          image.ready, image.timeout, t0=t0)
            s.stop()
            times.append(s.seconds)
        r[key + "_s"] = statistics.median(times)
        if runs > 1:
            r[key + "_runs"] = times
        after = _slim(lazy.stats())
        r[key + "_stats"] = after if before is None else _delta(before, after)

    cold_cache, trace = os.path.join(d, "cache-cold"), os.path.join(d, "cold.trace")
    try:
        lazy_start(cold_cache, "cold", trace=trace)
        st = r["cold_stats"]
        log(f"  {image.name}: lazy cold {r['cold_s']:.2f}s, fetched {st['bytes_fetched']} of {st['image_bytes_compressed']}")
        lazy_start(cold_cache, "warm_kept", drop=False, new_mount=False, runs=WARM_RUNS)
        lazy_start(cold_cache, "warm", drop=False)  # ends the kept mount first: the trace is complete after
        log(f"  {image.name}: lazy warm {r['warm_kept_s']:.2f}s mount kept, {r['warm_s']:.2f}s new mount "
            f"(native warm {r['native_warm_s']:.2f}s)")
        if ctx.prefetch:
            lazy_start(os.path.join(d, "cache-prefetch"), "prefetch", prefetch=trace)
            log(f"  {image.name}: lazy cold+prefetch {r['prefetch_s']:.2f}s")
    finally:
        lazy.end()

    rep = _replay(ctx, trace, layout_ref, cold_cache)
    r["repeat_hit_ratio"] = _hit_ratio(rep)
    rep = _replay(ctx, trace, layout_ref, ctx.host_cache)  # also leaves this image's chunks in the host cache
    r["cross_image_hit_ratio"] = _hit_ratio(rep)
    cold_fetched = r["cold_stats"].get("bytes_fetched")
    if isinstance(rep.get("bytes_fetched"), int) and cold_fetched:
        # Share of the cold start's network bytes that other images had already brought to this host.
        r["cross_image_bytes_saved"] = max(0.0, 1.0 - rep["bytes_fetched"] / cold_fetched)

    if concurrent:
        r["concurrent"] = _concurrent(ctx, image, lazy, os.path.join(d, "cache-conc"), network)
        log(f"  {image.name}: {ctx.concurrency} concurrent: {r['concurrent']}")
    shutil.rmtree(d, ignore_errors=True)
    return r


def _concurrent(ctx, image, lazy, cache, network):
    lazy.end()
    fincore.drop_caches()
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(ctx.concurrency) as pool:
            futures = [pool.submit(sandbox.start_until_ready, lazy.run_cmd(cache, image.cmd, network), image.ready,
                                   image.timeout * 4, t0) for _ in range(ctx.concurrency)]
            started, errors = [], []
            for f in futures:
                try:
                    started.append(f.result())
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
        all_ready = time.monotonic() - t0
        for s in started:
            s.stop()
        st = lazy.stats()
        if errors:
            raise RuntimeError(f"{len(errors)} of {ctx.concurrency} sandboxes failed: {errors[0]}")
        return {"n": ctx.concurrency, "all_ready_s": all_ready, "median_ready_s": sorted(s.seconds for s in started)[len(started) // 2],
                "bytes_fetched": st["bytes_fetched"]}
    finally:
        lazy.end()


_KEEP = ("image_bytes_compressed", "image_bytes_uncompressed", "files_bytes", "bytes_read", "bytes_needed",
         "needed_percent", "chunk_hits", "chunk_misses", "cache_hit_ratio", "fetches", "requests", "bytes_fetched",
         "amplification", "read_errors", "not_lazy_layers", "prefetch")


def _slim(stats):
    return {k: stats.get(k) for k in _KEEP}


_COUNTERS = ("bytes_read", "bytes_needed", "chunk_hits", "chunk_misses", "fetches", "requests", "bytes_fetched",
             "read_errors")


def _delta(before, after):
    """The slim stats of what happened between two readings of one mount's (cumulative) counters."""
    d = dict(after)
    for k in _COUNTERS:
        if isinstance(after.get(k), int) and isinstance(before.get(k), int):
            d[k] = after[k] - before[k]
    lookups = (d.get("chunk_hits") or 0) + (d.get("chunk_misses") or 0)
    d["cache_hit_ratio"] = d["chunk_hits"] / lookups if lookups else 0.0
    d["amplification"] = d["bytes_fetched"] / d["bytes_needed"] if d.get("bytes_needed") else 0.0
    if after.get("files_bytes"):
        d["needed_percent"] = 100.0 * d["bytes_needed"] / after["files_bytes"]
    return d
