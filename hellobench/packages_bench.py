#!/usr/bin/env python3
"""HelloBench packages (issue 15): SOCK's Fig. 7 (ATC'18, download / install / import of popular PyPI
packages), reproduced with lazyfs package layers.

    python3 hellobench/packages_bench.py --lazyfs build/tools/lazyfs [--links lan,wan] [--packages six,flask]
                                         [--out DIR]

Packages: SOCK's list, each built as wheels from Debian 12's python3-* package and its python3-* closure
(tests/integration/debian_wheels.py, built once, then cached; Debian's metadata leave out dependencies
dpkg provides, so a package's requirement set is its whole Debian closure, pinned). `south` has no
Debian 12 package and is left out. The index (nginx) and the registry (docker-registry) sit in a network
namespace behind an emulated link (hellobench/netem.py: tbf + a delay proxy); the sandbox image is
Debian's python3 + python3-pip + the shared libraries and data the chosen Debian packages use (Debian's
wheels link to system libraries where PyPI's bundle them), converted to eStargz and pushed to that
registry.

Per package, the time to a successful `import` in a sandbox of that image (`lazyfs run`, crun), as wall
seconds of the whole command, with the import's own time measured inside the sandbox:

  pip            `pip download` + `pip install -t` (the lock's pins, from the index over the link) + import;
                 the baseline (its phases are download / install / import)
  lazyfs cold    `lazyfs run --packages LOCK --package-registry …`: a host cache that has only the image
                 (warmed first), the package layers in the registry (pushed by another cache); includes
                 the probe of the image's python3 on this host
  cold, probed   the same on a host that has run this image with packages before (its python3 probed,
                 by a run with an empty lock): new packages for an image the host knows
  lazyfs warm    the same again on that cache (new mounts, chunks cached)
  first ever     `lazyfs run --packages LOCK` with no layer anywhere: wheels downloaded over the link,
                 installed, .pyc compiled in the image, packed (the build)
  local disk     the same files pre-installed on local disk (`lazyfs pkg install --to`, .pyc by the image)
                 bound into the sandbox: the import a read-only lazy tree is compared with

Bytes fetched are the package mount's (its daemon's log), against the wheels' size; cache growth is
`lazyfs cache stats` chunk bytes. Goals (issue 15): median cold at least 10x faster than pip on wan;
warm within 1.2x of local disk; bytes fetched at most 30% of the wheels. Prints tables, writes
OUT/packages.json, OUT/packages.md and a stacked-bar plot per link; asserts nothing. Machine caveat: a
noisy, shared 2-core box; each figure is one run unless --runs says otherwise.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import debian_image  # noqa: E402
import netem  # noqa: E402
import report  # noqa: E402
from debian_wheels import debian_closure, debian_wheels  # noqa: E402
from package_index import NginxIndex, PackageIndex  # noqa: E402
from registry import BenchRegistry  # noqa: E402

# SOCK's Fig. 7 packages: (name, Debian package, module imported).
PACKAGES = [
    ("simplejson", "python3-simplejson", "simplejson"),
    ("django", "python3-django", "django"),
    ("numpy", "python3-numpy", "numpy"),
    ("matplotlib", "python3-matplotlib", "matplotlib.pyplot"),
    ("pip", "python3-pip", "pip"),
    ("protobuf", "python3-protobuf", "google.protobuf"),
    ("requests", "python3-requests", "requests"),
    ("dnspython", "python3-dnspython", "dns.resolver"),
    ("jinja2", "python3-jinja2", "jinja2"),
    ("werkzeug", "python3-werkzeug", "werkzeug"),
    ("setuptools", "python3-setuptools", "setuptools"),
    ("mock", "python3-mock", "mock"),
    ("flask", "python3-flask", "flask"),
    ("six", "python3-six", "six"),
]
LEFT_OUT = {"south": "no Debian 12 package (removed from Debian in 2016)"}

IMPORT = "import time, importlib; t = time.monotonic(); importlib.import_module({mod!r}); print('IMPORT', time.monotonic() - t)"
PIP = """
import subprocess, sys, time, importlib
pins, index, mod = sys.argv[1].split(), sys.argv[2], sys.argv[3]
quiet = ["-q", "--disable-pip-version-check", "--no-cache-dir"]
t0 = time.monotonic()
subprocess.run([sys.executable, "-m", "pip", "download", *quiet, "-d", "/tmp/wheels", "--index-url", index,
                "--trusted-host", index.split("/")[2].split(":")[0], *pins], check=True)
t1 = time.monotonic()
subprocess.run([sys.executable, "-m", "pip", "install", *quiet, "--no-index", "--find-links", "/tmp/wheels",
                "--root-user-action=ignore", "-t", "/tmp/site", *pins], check=True)
t2 = time.monotonic()
sys.path.insert(0, "/tmp/site")
importlib.import_module(mod)
t3 = time.monotonic()
print("DOWNLOAD", t1 - t0)
print("INSTALL", t2 - t1)
print("IMPORT", t3 - t2)
"""


def run(cmd, timeout=1800, ok=True):
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    if ok and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}… exit {proc.returncode}: {proc.stderr[-3000:]}")
    return seconds, proc


def phase(stdout, name):
    m = re.search(rf"^{name} ([0-9.e-]+)$", stdout, re.M)
    return float(m.group(1)) if m else None


def fetched_bytes(log_file):
    """Bytes the package mount fetched: the last 'unmounted … N bytes fetched' of a run's daemon log."""
    try:
        with open(log_file) as f:
            lines = [ln for ln in f if "unmounted " in ln and "bytes fetched" in ln]
    except OSError:
        return None
    m = re.search(r"(\d+) bytes fetched", lines[-1]) if lines else None
    return int(m.group(1)) if m else None


def native_dependencies(debs):
    """What the Debian packages' closure depends on besides python3-* packages: shared libraries
    (libblas3 for numpy, libfreetype6 for matplotlib...) and data packages. Wheels from PyPI bundle such
    libraries; Debian's link to the system's, so the sandbox image must have them."""
    closure = debian_closure(debs)
    out = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                          "--no-replaces", "--no-enhances", *closure], capture_output=True, text=True, check=True).stdout
    native = set()
    for m in re.finditer(r"^\s+\|?Depends: ([^<\s]\S*)$", out, re.M):
        name = m.group(1)
        # Build tools and headers come in through dev packages some closure members depend on (pythran):
        # nothing an import loads.
        if not name.startswith("python3") and name not in ("libc6", "g++") and not name.endswith("-dev"):
            native.add(name)
    return sorted(native)


def chunk_bytes(lazyfs, cache):
    _, proc = run([lazyfs, "cache", "stats", "--json", "--cache-dir", cache])
    return json.loads(proc.stdout)["chunk_bytes"]


class Bench:
    def __init__(self, args, work):
        self.lazyfs = args.lazyfs
        self.work = work
        self.runs = args.runs

    def lazyfs_run(self, cache, extra, command, log_name, network="none"):
        log = os.path.join(self.work, log_name + ".log")
        if os.path.exists(log):
            os.unlink(log)
        seconds, proc = run([self.lazyfs, "run", "--keep-mount", "0", "--cache-dir", cache, "--log-file", log,
                             "--network", network, "--insecure-registry", self.registry, *extra, self.image, "--",
                             *command])
        return seconds, proc, log

    def setup(self, link, wheels, native):
        self.registry = link["registry"]
        self.wheel_sizes = {os.path.basename(w.path): os.path.getsize(w.path) for w in wheels}
        layout, tag = debian_image.build_image("hellobench-python-pip", ["python3", "python3-pip", *native],
                                               {"Cmd": ["python3"], "Env": debian_image.DEFAULT_ENV},
                                               lazyfs=self.lazyfs)
        self.image = f"docker://{self.registry}/hellobench/python-pip:1"
        run([self.lazyfs, "push", "--insecure-registry", self.registry, f"oci:{layout}:{tag}", self.image])
        self.prefix = f"docker://{self.registry}/hellobench-packages"

    def lock(self, pkg, reqs, index_url):
        path = os.path.join(self.work, pkg + ".lock")
        if not os.path.exists(path):
            run([self.lazyfs, "pkg", "resolve", "-q", "--index-url", index_url, "--python-version", "3.11.2",
                 "--platform", "manylinux_2_36_x86_64", "--cache-dir", os.path.join(self.work, "resolve-cache"),
                 "-o", path, *reqs])
        with open(path) as f:
            lock = json.load(f)
        return path, lock

    def measure(self, link_name, pkg, mod, reqs, index_url):
        lock_path, lock = self.lock(pkg, reqs, index_url)
        pins = " ".join(f"{p['name']}=={p['version']}" for p in lock["packages"])
        wheel_bytes = sum(p["size"] or self.wheel_sizes.get(p["filename"], 0) for p in lock["packages"])
        r = {"package": pkg, "module": mod, "dists": len(lock["packages"]), "wheel_bytes": wheel_bytes}
        tag = f"{link_name}-{pkg}"
        image_cache = os.path.join(self.work, f"{tag}-image-cache")

        # The pusher: another host that builds the layers and pushes them (not timed here).
        run([self.lazyfs, "pkg", "install", "-q", lock_path, "--cache-dir", os.path.join(self.work, f"{tag}-pusher"),
             "--compile-in", self.image, "--insecure-registry", self.registry, "--registry", self.prefix, "--push"])

        # Local disk: the same files (and .pyc) pre-installed, bound into the sandbox. Run first, on the
        # cache (b) uses: it warms exactly the image files the import reads.
        plain = os.path.join(self.work, f"{tag}-plain")
        run([self.lazyfs, "pkg", "install", "-q", lock_path, "--to", plain, "--compile-in", self.image,
             "--insecure-registry", self.registry, "--cache-dir", image_cache])
        site = os.path.join(self.work, f"{tag}-site")
        os.makedirs(site, exist_ok=True)
        for d in sorted(os.listdir(plain)):
            if "==" in d:
                subprocess.run(["cp", "-a", os.path.join(plain, d, "files") + "/.", site], check=True)
        cache = os.path.join(self.work, f"{tag}-cache")
        first = os.path.join(self.work, f"{tag}-first")
        local_args = ["-v", f"{site}:/packages/site:ro", "-e", "PYTHONPATH=/packages/site"]
        self.lazyfs_run(cache, local_args, ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-warm-cold-image")
        local = []
        for i in range(self.runs):
            s, proc, _ = self.lazyfs_run(cache, ["-v", f"{site}:/packages/site:ro", "-e",
                                                       "PYTHONPATH=/packages/site"],
                                         ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-local{i}")
            local.append((s, phase(proc.stdout, "IMPORT")))
        r["local_s"] = statistics.median(x[0] for x in local)
        r["local_import_s"] = statistics.median(x[1] for x in local)
        # The same import once more on the cache of (d): both lazy caches now hold the image files the
        # import reads, so what (b) and (d) fetch is the packages'.
        self.lazyfs_run(first, ["-v", f"{site}:/packages/site:ro", "-e", "PYTHONPATH=/packages/site"],
                        ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-warm-first-image")
        # (a) pip, in a sandbox on the host network (the index is across the link).
        self.lazyfs_run(image_cache, [], ["python3", "-m", "pip", "--version"], f"{tag}-warm-image", network="host")
        # The index without PEP 658 files: Debian's pip 23.0.1 mis-compares names in them (pypa/pip#12038).
        nometa = index_url.replace("/html/", "/nometa/")
        s, proc, _ = self.lazyfs_run(image_cache, [], ["python3", "-c", PIP, pins, nometa, mod], f"{tag}-pip",
                                     network="host")
        r["pip_s"] = s
        r["pip_phases"] = {k: phase(proc.stdout, k.upper()) for k in ("download", "install", "import")}

        # (b) cold: the image is in the cache, the layers only in the registry.
        before = chunk_bytes(self.lazyfs, cache)
        packages = ["--packages", lock_path, "--package-registry", self.prefix]
        s, proc, log = self.lazyfs_run(cache, packages, ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-cold")
        r["cold_s"], r["cold_import_s"] = s, phase(proc.stdout, "IMPORT")
        r["cold_fetched_bytes"] = fetched_bytes(log)
        r["cold_cache_growth"] = chunk_bytes(self.lazyfs, cache) - before
        # (b') cold on a host that has run this image with packages before: its python3 probed already (a
        # run with an empty lock), the package layers cold. The common case in a fleet: new packages for an
        # image the host knows.
        probed = os.path.join(self.work, f"{tag}-probed")
        empty_lock = os.path.join(self.work, f"{tag}-empty.lock")
        with open(empty_lock, "w") as f:
            json.dump(dict(lock, requirements=[], packages=[]), f)
        self.lazyfs_run(probed, local_args, ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-warm-probed-image")
        self.lazyfs_run(probed, ["--packages", empty_lock], ["true"], f"{tag}-probe")
        s, proc, log = self.lazyfs_run(probed, packages, ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-cold-probed")
        r["cold_probed_s"], r["cold_probed_import_s"] = s, phase(proc.stdout, "IMPORT")
        r["cold_probed_fetched_bytes"] = fetched_bytes(log)
        # (c) warm.
        warm = []
        for i in range(self.runs):
            s, proc, _ = self.lazyfs_run(cache, packages, ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-warm{i}")
            warm.append((s, phase(proc.stdout, "IMPORT")))
        r["warm_s"] = statistics.median(w[0] for w in warm)
        r["warm_import_s"] = statistics.median(w[1] for w in warm)

        # (d) first ever: nothing built anywhere (this cache has the image only).
        s, proc, log = self.lazyfs_run(first, ["--packages", lock_path, "--index-url", index_url],
                                       ["python3", "-c", IMPORT.format(mod=mod)], f"{tag}-first")
        r["first_s"], r["first_import_s"] = s, phase(proc.stdout, "IMPORT")
        builds = re.findall(r"package layer \S+ \(\S+\): .* in (\d+) ms", proc.stderr)
        r["first_build_s"] = sum(int(b) for b in builds) / 1000

        for d in (image_cache, cache, first, plain, site, probed, os.path.join(self.work, f"{tag}-pusher")):
            shutil.rmtree(d, ignore_errors=True)
        return r


def fmt(v, f="{:.2f}"):
    return "-" if v is None else f.format(v)


def table(link, rows):
    out = [f"### {link}", "",
           "| package | dists | wheels MB | pip s (dl/inst/imp) | cold s | cold, probed s | warm s | first s (build) | "
           "local s | import warm/local ms | pip/cold | pip/cold probed | warm/local | fetched % of wheels | "
           "cache growth MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['package']} | error: {r['error'][:80]} |")
            continue
        p = r["pip_phases"]
        fetched = r["cold_fetched_bytes"]
        out.append("| {} | {} | {} | {} ({}/{}/{}) | {} | {} | {} | {} ({}) | {} | {}/{} | {} | {} | {} | {} | {} |".format(
            r["package"], r["dists"], fmt(r["wheel_bytes"] / 1e6, "{:.1f}"), fmt(r["pip_s"]),
            fmt(p["download"]), fmt(p["install"]), fmt(p["import"]), fmt(r["cold_s"]), fmt(r.get("cold_probed_s")),
            fmt(r["warm_s"]),
            fmt(r["first_s"]), fmt(r["first_build_s"]), fmt(r["local_s"]),
            fmt(r["warm_import_s"] * 1000, "{:.0f}"), fmt(r["local_import_s"] * 1000, "{:.0f}"),
            fmt(r["pip_s"] / r["cold_s"], "{:.1f}x"),
            fmt(r["pip_s"] / r["cold_probed_s"] if r.get("cold_probed_s") else None, "{:.1f}x"),
            fmt(r["warm_s"] / r["local_s"], "{:.2f}x"),
            fmt(100 * fetched / r["wheel_bytes"] if fetched is not None and r["wheel_bytes"] else None, "{:.0f}%"),
            fmt(r["cold_cache_growth"] / 1e6, "{:.1f}")))
    ok = [r for r in rows if "error" not in r]
    if ok:
        med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
        out += ["", "Medians: pip/cold {} (probed image {}), warm/local {}, fetched {} of the wheels (goals: >= 10x "
                "on wan, <= 1.2x, <= 30%).".format(
                    fmt(med([r["pip_s"] / r["cold_s"] for r in ok]), "{:.1f}x"),
                    fmt(med([r["pip_s"] / r["cold_probed_s"] for r in ok if r.get("cold_probed_s")]), "{:.1f}x"),
                    fmt(med([r["warm_s"] / r["local_s"] for r in ok]), "{:.2f}x"),
                    fmt(med([100 * r["cold_fetched_bytes"] / r["wheel_bytes"] for r in ok
                             if r["cold_fetched_bytes"] is not None and r["wheel_bytes"]]), "{:.0f}%"))]
    return "\n".join(out)


def plot(out_dir, link, rows):
    """SOCK Fig. 7 style: per package, stacked download / install / import for pip and lazyfs cold."""
    plt = report._pyplot()
    ok = [r for r in rows if "error" not in r]
    if plt is None or not ok:
        return None
    names = [r["package"] for r in ok]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4))
    x = range(len(names))
    w = 0.4
    pip = [r["pip_phases"] for r in ok]
    bottom = [0.0] * len(ok)
    for key, color in (("download", "#4c72b0"), ("install", "#dd8452"), ("import", "#55a868")):
        vals = [p[key] or 0 for p in pip]
        ax.bar([i - w / 2 for i in x], vals, w, bottom=bottom, color=color, label=f"pip {key}")
        bottom = [b + v for b, v in zip(bottom, vals)]
    setup = [r["cold_s"] - (r["cold_import_s"] or 0) for r in ok]
    imp = [r["cold_import_s"] or 0 for r in ok]
    ax.bar([i + w / 2 for i in x], setup, w, color="#8172b3", label="lazyfs cold: sandbox + mount")
    ax.bar([i + w / 2 for i in x], imp, w, bottom=setup, color="#c44e52", label="lazyfs cold: import")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_ylabel("seconds to a successful import")
    ax.set_title(f"HelloBench packages ({link}): pip vs lazyfs package layers")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    name = f"packages-{link}.png"
    fig.savefig(os.path.join(out_dir, name), dpi=90, bbox_inches="tight")
    plt.close(fig)
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--links", default="lan,wan")
    ap.add_argument("--packages", default="", help="comma-separated subset of the SOCK names")
    ap.add_argument("--runs", type=int, default=1, help="warm and local-disk runs per package (median)")
    ap.add_argument("--keep-work", action="store_true", help="leave the work directory (logs, locks) behind")
    ap.add_argument("--out", default=os.path.join(HERE, "results", time.strftime("%Y-%m-%d") + "-packages"))
    args = ap.parse_args()
    args.lazyfs = os.path.abspath(args.lazyfs)
    chosen = [p for p in PACKAGES if not args.packages or p[0] in args.packages.split(",")]
    os.makedirs(args.out, exist_ok=True)

    print("building wheels from Debian (cached after the first run)…", file=sys.stderr)
    wheels = debian_wheels([deb for _, deb, _ in chosen])
    by_deb = {}
    for w in wheels:
        by_deb.setdefault(os.path.basename(w.path), w)
    with open(os.path.join(os.path.dirname(wheels[0].path), "..", "wheels.json")) as f:
        deb_of = {e["file"]: e["deb"].split("_")[0] for e in json.load(f)}
    requirements = {}
    for name, deb, _ in chosen:
        closure = set(debian_closure([deb]))
        requirements[name] = sorted({w.name for w in wheels if deb_of.get(os.path.basename(w.path)) in closure})

    native = native_dependencies([deb for _, deb, _ in chosen])
    results = {"left_out": LEFT_OUT, "image_packages": ["python3", "python3-pip", *native], "links": {}}
    md = ["# HelloBench packages", "", __doc__.split("\n\n", 2)[2].split("\n\nPer package")[0], ""]
    work = tempfile.mkdtemp(prefix="hellobench-packages-")
    try:
        index = PackageIndex(os.path.join(work, "index"))
        index.add_wheel_files(wheels)
        index.write()
        bench = Bench(args, work)
        for link_name in args.links.split(","):
            profile = netem.PROFILES[link_name]
            with netem.Link(profile) as link, BenchRegistry(link) as reg, \
                    NginxIndex(index.root, netns=link.netns) as nginx:
                index_host = link.start_proxy(5001, f"127.0.0.1:{nginx.port}")
                index_url = f"http://{index_host}/html/"
                bench.setup({"registry": reg.host}, wheels, native)
                rows = []
                for name, _, mod in chosen:
                    print(f"[{link_name}] {name}…", file=sys.stderr)
                    try:
                        rows.append(bench.measure(link_name, name, mod, requirements[name], index_url))
                    except Exception as e:  # noqa: BLE001  (one package failing must not end the run)
                        rows.append({"package": name, "error": str(e)})
                    print(json.dumps(rows[-1]), file=sys.stderr)
                results["links"][link_name] = rows
                text = table(f"{link_name} ({profile.rate_mbit} Mbit/s, {profile.rtt_ms} ms RTT)", rows)
                print(text)
                md += [text, ""]
                png = plot(args.out, link_name, rows)
                if png:
                    md += [f"![{link_name}]({png})", ""]
    finally:
        if args.keep_work:
            print(f"work directory: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    md += ["Left out: " + ", ".join(f"{k} ({v})" for k, v in LEFT_OUT.items()), ""]
    with open(os.path.join(args.out, "packages.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "packages.md"), "w") as f:
        f.write("\n".join(md))
    print(f"wrote {args.out}/packages.md", file=sys.stderr)


if __name__ == "__main__":
    main()
