#!/usr/bin/env python3
"""Resolution benchmark (issue 14): `lazyfs pkg resolve` against Debian's pip on the same local index.

    python3 hellobench/pkg_resolve_bench.py --lazyfs build/tools/lazyfs [--runs 3] [--json OUT]

The index is nginx on 127.0.0.1 over wheels made from Debian's python3-* packages
(tests/integration/debian_wheels.py: real METADATA, real files; built once, then cached), in the
flavours of tests/integration/package_index.py. For each of the ten requirement sets of
debian_wheels.CLOSURES (largest closure first):

  lazyfs cold   empty cache directory: `lazyfs pkg resolve --json -q` over PEP 503 HTML with PEP 658
                metadata files
  lazyfs warm   the same again on the cache the cold run left (pages revalidated with ETags, metadata
                from the cache)
  pip           `pip install --dry-run --ignore-installed --report` for the same interpreter, on the
                index without metadata files (Debian's pip 23.0.1 mis-compares names in metadata files,
                pypa/pip#12038), with --no-cache-dir, so cold every time

Times are wall seconds of the whole command (process start included), the median of --runs; lazyfs's
own in-process resolution time is shown too. Requests and bytes are nginx's access log for one run
(bytes: response bodies). The request goal is one page per project plus one metadata file per dist.
Prints a table; asserts nothing. Machine caveat: a noisy, shared 2-core box.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from debian_wheels import CLOSURES, DEBIAN_ROOTS, debian_wheels  # noqa: E402
from package_index import NginxIndex, PackageIndex  # noqa: E402
from pip_reference import host_python_version, pip_resolve  # noqa: E402


def lazyfs_resolve(lazyfs, index_url, python, cache, requirements):
    started = time.monotonic()
    proc = subprocess.run([lazyfs, "pkg", "resolve", "--json", "-q", "--index-url", index_url,
                           "--python-version", python, "--cache-dir", cache, *requirements],
                          capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"lazyfs pkg resolve {' '.join(requirements)}: {proc.stderr}")
    out = json.loads(proc.stdout)
    return seconds, out


def traffic(server):
    requests = server.requests()
    return len(requests), sum(r[3] for r in requests)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lazyfs", default=os.environ.get("LAZYFS", os.path.join(HERE, "..", "build", "tools", "lazyfs")))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    lazyfs = os.path.abspath(args.lazyfs)
    python = host_python_version()

    print("building wheels from Debian packages (cached after the first run) ...", file=sys.stderr)
    wheels = debian_wheels(DEBIAN_ROOTS)
    work = tempfile.mkdtemp(prefix="lazyfs-pkg-bench.")
    rows = []
    try:
        index = PackageIndex(os.path.join(work, "index"))
        index.add_wheel_files(wheels)
        index.write()
        with NginxIndex(index.root) as server:
            html, nometa = server.index_url("html"), server.index_url("nometa")
            sets = []
            for name, requirements in CLOSURES.items():
                _, out = lazyfs_resolve(lazyfs, html, python, os.path.join(work, "probe"), requirements)
                sets.append((len(out["packages"]), name, requirements))
            sets.sort(key=lambda s: (-s[0], s[1]))
            for dists, name, requirements in sets:
                cold, warm, pip_times, inproc_cold, inproc_warm = [], [], [], [], []
                for run in range(args.runs):
                    cache = os.path.join(work, f"cache-{name}-{run}")
                    server.clear_access_log()
                    seconds, out = lazyfs_resolve(lazyfs, html, python, cache, requirements)
                    cold.append(seconds)
                    inproc_cold.append(out["stats"]["seconds"])
                    cold_traffic = traffic(server)
                    projects = len({r[1] for r in server.requests() if r[1].startswith("/html/")})
                    server.clear_access_log()
                    seconds, out_warm = lazyfs_resolve(lazyfs, html, python, cache, requirements)
                    warm.append(seconds)
                    inproc_warm.append(out_warm["stats"]["seconds"])
                    warm_traffic = traffic(server)
                    server.clear_access_log()
                    pip = pip_resolve(nometa, requirements)
                    if not pip.ok:
                        raise RuntimeError(f"pip failed on {name}: {pip.stderr}")
                    pip_times.append(pip.seconds)
                    pip_traffic = traffic(server)
                pins = {p["name"]: p["version"] for p in out["packages"]}
                row = {"set": name, "requirements": requirements, "dists": dists, "projects": projects,
                       "agree_with_pip": pins == pip.pins,
                       "lazyfs_cold_s": statistics.median(cold), "lazyfs_cold_inproc_s": statistics.median(inproc_cold),
                       "lazyfs_cold_requests": cold_traffic[0], "lazyfs_cold_bytes": cold_traffic[1],
                       "lazyfs_warm_s": statistics.median(warm), "lazyfs_warm_inproc_s": statistics.median(inproc_warm),
                       "lazyfs_warm_requests": warm_traffic[0], "lazyfs_warm_bytes": warm_traffic[1],
                       "pip_s": statistics.median(pip_times), "pip_requests": pip_traffic[0], "pip_bytes": pip_traffic[1]}
                row["request_goal"] = projects + dists
                row["speedup_cold"] = row["pip_s"] / row["lazyfs_cold_s"]
                rows.append(row)
                print(f"  {name}: {dists} dists done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n`lazyfs pkg resolve` vs pip {python} — medians of {args.runs} run(s); wall s incl. process start "
          "(in-process s in brackets); requests / KiB from nginx's log\n")
    print("| set | dists | lazyfs cold | req | KiB | lazyfs warm | req | KiB | pip | req | KiB | pip/lazyfs cold | "
          "req goal | same pins |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['set']} | {r['dists']} | {r['lazyfs_cold_s']:.3f} ({r['lazyfs_cold_inproc_s']:.3f}) | "
              f"{r['lazyfs_cold_requests']} | {r['lazyfs_cold_bytes'] / 1024:.0f} | "
              f"{r['lazyfs_warm_s']:.3f} ({r['lazyfs_warm_inproc_s']:.3f}) | {r['lazyfs_warm_requests']} | "
              f"{r['lazyfs_warm_bytes'] / 1024:.0f} | {r['pip_s']:.2f} | {r['pip_requests']} | "
              f"{r['pip_bytes'] / 1024:.0f} | {r['speedup_cold']:.0f}x | "
              f"{'ok' if r['lazyfs_cold_requests'] <= r['request_goal'] else 'OVER'} "
              f"({r['lazyfs_cold_requests']}/{r['request_goal']}) | {'yes' if r['agree_with_pip'] else 'NO'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
