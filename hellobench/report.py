"""HelloBench report: DIR/report.md with per-image tables, medians against the goals, and plots in the
spirit of Slacker's figures (start time lazy vs full pull, % of data needed, repeat-run hit ratio).

    report.write(DIR, results)            # results as written by hellobench/run (results.json)
    python3 hellobench/report.py DIR      # re-render from DIR/results.json

Plots are PNG from matplotlib; without matplotlib, simple SVG bar charts are written instead.
"""

import json
import os
import statistics
import sys

MB = 1e6


def _ok(r):
    return "error" not in r and "cold_s" in r


def _med(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def _repeats_note(ok):
    runs = max([len(r.get("warm_kept_runs") or []) for r in ok] + [1])
    if runs == 1:
        return "Each figure is a single run."
    return (f"Each figure is a single run, except the warm starts on the unpacked rootfs and on the kept mount: "
            f"medians of {runs} runs.")


def _f(v, fmt="{:.2f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "–"


def derive(r):
    """Per-image derived figures (None where unmeasured)."""
    st = r.get("cold_stats") or {}
    image_bytes = st.get("image_bytes_compressed") or r.get("image_bytes_plain")
    fetched, needed = st.get("bytes_fetched"), st.get("bytes_needed")
    d = {
        "speedup_cold": r["full_s"] / r["cold_s"] if r.get("cold_s") else None,
        "speedup_pull_only": (r["full_pull_s"] + r["full_run_s"]) / r["cold_s"] if r.get("cold_s") else None,
        "speedup_prefetch": r["full_s"] / r["prefetch_s"] if r.get("prefetch_s") else None,
        "fetched_pct": 100.0 * fetched / image_bytes if fetched is not None and image_bytes else None,
        "needed_pct": st.get("needed_percent"),
        "fetched_vs_fincore": fetched / r["fincore_bytes"] if fetched is not None and r.get("fincore_bytes") else None,
        "needed_vs_fincore": needed / r["fincore_bytes"] if needed is not None and r.get("fincore_bytes") else None,
        "warm_vs_native": r["warm_s"] / r["native_warm_s"] if r.get("warm_s") and r.get("native_warm_s") else None,
        "warm_kept_vs_native": (r["warm_kept_s"] / r["native_warm_s"]
                                if r.get("warm_kept_s") and r.get("native_warm_s") else None),
        "image_mb": image_bytes / MB if image_bytes else None,
    }
    c = r.get("concurrent")
    if c and fetched:
        d["concurrent_ratio"] = c["bytes_fetched"] / fetched
    return d


def goals(results):
    ok = [r for r in results["images"] if _ok(r)]
    ds = [derive(r) for r in ok]
    conc = [d["concurrent_ratio"] for d in ds if d.get("concurrent_ratio") is not None]
    rows = [
        ("median cold-start speedup over full pull (no prefetch)", _med([d["speedup_cold"] for d in ds]), ">= 3x", 3, True),
        ("median cold-start speedup over full pull (trace prefetch)", _med([d["speedup_prefetch"] for d in ds]), ">= 10x", 10, True),
        ("median bytes fetched, % of image (compressed)", _med([d["fetched_pct"] for d in ds]), "<= 10%", 10, False),
        ("median bytes fetched / bytes needed (fincore)", _med([d["fetched_vs_fincore"] for d in ds]), "<= 1.5x", 1.5, False),
        ("median warm-cache start / unpacked-rootfs start (mount kept)", _med([d["warm_kept_vs_native"] for d in ds]),
         "<= 1.2x", 1.2, False),
        ("median warm-cache start / unpacked-rootfs start (new mount)", _med([d["warm_vs_native"] for d in ds]),
         "(info)", None, False),
        ("16 concurrent sandboxes: bytes fetched / one sandbox's", conc[0] if conc else None, "<= 1.1x", 1.1, False),
    ]
    return [(name, v, goal, (v >= lim if hi else v <= lim) if v is not None and lim is not None else None)
            for name, v, goal, lim, hi in rows]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results, plots):
    imgs = results["images"]
    ok = [r for r in imgs if _ok(r)]
    prof = results.get("profile")
    net = f"`{results['net']}`" + (f" ({prof['rate_mbit']} Mbit/s, {prof['rtt_ms']} ms RTT)" if prof else " (loopback)")
    out = [f"# HelloBench report — {results.get('started', '')}", "",
           f"{len(ok)} of {len(imgs)} images measured; network {net}; "
           f"{'quick mode; ' if results.get('quick') else ''}lazyfs `{results.get('lazyfs')}`.",
           f"Lazy start: {results.get('start_method')}. Baseline: {results.get('baseline_method')}.",
           "Times are seconds from the first command (pull or mount) until the task is ready (its expected "
           "output line, or its TCP port answering on 127.0.0.1). " + _repeats_note(ok), "",
           "## Goals (medians over the measured images)", "",
           _table(["figure", "measured", "goal", "met"],
                  [(n, _f(v), g, {True: "yes", False: "**no**", None: "–"}[m]) for n, v, g, m in goals(results)]), "",
           "Warm starts (same chunk cache, warm page cache): *mount kept* is a second `lazyfs run` while the image "
           "mount of the first still lingers (--keep-mount): no manifest fetch, no mount, no tree load, as a repeat "
           "start on a worker usually finds it; the warm-start goal is judged on it. *New mount* ends that mount "
           "first, so the run resolves the image in the registry and mounts it again (tree from the cache).", ""]
    if results.get("interrupted"):
        out += ["**The run was interrupted; the rows below are what was measured before.**", ""]
    out += ["## Start time (s)", "",
            _table(["image", "category", "MB (gz)", "full pull+run", "(pull / unpack / run)", "lazy cold", "lazy prefetch",
                    "lazy warm (new mount)", "lazy warm (mount kept)", "native warm", "speedup cold", "speedup prefetch",
                    "speedup vs pull+run only"],
                   [(r["name"], r["category"], _f(derive(r)["image_mb"], "{:.1f}"), _f(r["full_s"]),
                     f"{_f(r['full_pull_s'])} / {_f(r['full_unpack_s'])} / {_f(r['full_run_s'])}", _f(r["cold_s"]),
                     _f(r.get("prefetch_s")), _f(r.get("warm_s")), _f(r.get("warm_kept_s")), _f(r.get("native_warm_s")),
                     _f(derive(r)["speedup_cold"], "{:.1f}x"), _f(derive(r)["speedup_prefetch"], "{:.1f}x"),
                     _f(derive(r)["speedup_pull_only"], "{:.1f}x"))
                    for r in ok]), "",
            "`speedup vs pull+run only` leaves out the unpack step (umoci also digests every file it writes, "
            "which docker's unpacker does not): a conservative lower bound of the speedup.", ""]
    out += ["## Data needed and fetched (cold start)", "",
            "`needed` is lazyfs's unique bytes read (4 KiB pages); `fincore` is the independent figure: page-cache "
            "residency of the unpacked rootfs after dropping caches and running the task once.", "",
            _table(["image", "image MB (gz)", "files MB", "needed MB", "needed % of files", "fincore MB",
                    "fetched MB", "fetched % of image", "fetched / needed", "fetched / fincore", "requests"],
                   [(r["name"], _f(derive(r)["image_mb"], "{:.1f}"), _f(r["cold_stats"]["files_bytes"] / MB, "{:.1f}"),
                     _f(r["cold_stats"]["bytes_needed"] / MB), _f(r["cold_stats"]["needed_percent"], "{:.1f}%"),
                     _f(r["fincore_bytes"] / MB), _f(r["cold_stats"]["bytes_fetched"] / MB),
                     _f(derive(r)["fetched_pct"], "{:.1f}%"), _f(r["cold_stats"]["amplification"], "{:.2f}x"),
                     _f(derive(r)["fetched_vs_fincore"], "{:.2f}x"), _f(r["cold_stats"].get("requests"), "{}"))
                    for r in ok]), ""]
    out += ["## Push and repeat runs", "",
            "Repeat-run hit ratio: `lazyfs trace replay` of the cold run's trace against the cache that run left. "
            "Cross-image: the same trace replayed against a host cache holding the images measured before it "
            "(the shared Debian base layer and packages): chunk-read hit ratio, and the share of the cold start's "
            "fetched bytes that the host already had.", "",
            _table(["image", "push plain (skopeo) s", "push eStargz (lazyfs) s", "repeat-run hit ratio",
                    "cross-image hit ratio", "cross-image bytes already cached"],
                   [(r["name"], _f(r["push_plain_s"]), _f(r["push_estargz_s"]), _f(r.get("repeat_hit_ratio"), "{:.1%}"),
                     _f(r.get("cross_image_hit_ratio"), "{:.1%}"),
                     _f(r.get("cross_image_bytes_saved"), "{:.1%}")) for r in ok]), ""]
    conc = [r for r in ok if r.get("concurrent")]
    if conc:
        out += ["## Concurrent sandboxes", "",
                _table(["image", "sandboxes", "all ready s", "median ready s", "bytes fetched MB", "one sandbox MB", "ratio"],
                       [(r["name"], r["concurrent"]["n"], _f(r["concurrent"]["all_ready_s"]),
                         _f(r["concurrent"]["median_ready_s"]), _f(r["concurrent"]["bytes_fetched"] / MB),
                         _f(r["cold_stats"]["bytes_fetched"] / MB), _f(derive(r).get("concurrent_ratio"), "{:.2f}x"))
                        for r in conc]), ""]
    failed = [r for r in imgs if not _ok(r)]
    if failed:
        out += ["## Failures", "", _table(["image", "error"],
                                          [(r["name"], r.get("error", "not measured").replace("|", "\\|")[:600]) for r in failed]), ""]
    if plots:
        out += ["## Plots", ""] + [f"![{t}]({p})" for t, p in plots] + [""]
    return "\n".join(out)


def _pyplot():
    """matplotlib.pyplot, also from Debian's python3-matplotlib when another python3 runs us; else None."""
    for extra in (None, "/usr/lib/python3/dist-packages"):
        if extra and (sys.version_info[:2] != (3, 11) or extra in sys.path or not os.path.isdir(extra)):
            continue  # Debian 12's packages are built for Python 3.11
        if extra:
            sys.path.append(extra)
        try:
            import matplotlib  # noqa: PLC0415
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415
            return plt
        except ImportError:
            if extra:
                sys.path.remove(extra)
    return None


def _pct(v):
    return 100 * v if v is not None else None


def plots(out_dir, results):
    """Writes start, needed and hits (PNG, else SVG) into out_dir; returns [(title, file name)]. An unmeasured
    value (None) gets no bar, which is not a zero bar, and a series unmeasured on every image is left out."""
    ok = [r for r in results["images"] if _ok(r)]
    if not ok:
        return []
    names = [r["name"] for r in ok]
    series = {
        "start": ("Start time per image (s)", [("full pull + run", [r["full_s"] for r in ok]),
                                                ("lazyfs cold", [r["cold_s"] for r in ok]),
                                                ("lazyfs cold + prefetch", [r.get("prefetch_s") for r in ok]),
                                                ("lazyfs warm, new mount", [r.get("warm_s") for r in ok]),
                                                ("lazyfs warm, mount kept", [r.get("warm_kept_s") for r in ok])]),
        "needed": ("Data needed, % of image", [("fetched, % of compressed image", [derive(r)["fetched_pct"] for r in ok]),
                                               ("needed, % of file bytes", [derive(r)["needed_pct"] for r in ok])]),
        "hits": ("Repeat-run hit ratio (%)", [("repeat run", [_pct(r.get("repeat_hit_ratio")) for r in ok]),
                                             ("cross-image", [_pct(r.get("cross_image_hit_ratio")) for r in ok]),
                                             ("cross-image bytes already cached",
                                              [_pct(r.get("cross_image_bytes_saved")) for r in ok])]),
    }
    series = {key: (title, [(label, vals) for label, vals in data if any(v is not None for v in vals)])
              for key, (title, data) in series.items()}
    plt = _pyplot()
    if plt is None:
        return [(title, _svg(out_dir, key, title, names, data)) for key, (title, data) in series.items() if data]
    made = []
    for key, (title, data) in series.items():
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names) + 2) + 2, 4))  # + 2 in for the legend
        width = 0.8 / len(data)
        for i, (label, values) in enumerate(data):
            ax.bar([x + i * width for x in range(len(names))], [float("nan") if v is None else v for v in values],
                   width, label=label)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))])
        # anchor: the end of each rotated name sits under its own group, not half a name to the right
        ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_title(title)
        if key == "start":
            ax.set_yscale("log")
        # outside the axes, right of them: inside, it covered the bars of the first or last images
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, key + ".png"), dpi=90, bbox_inches="tight")
        plt.close(fig)
        made.append((title, key + ".png"))
    return made


def _svg(out_dir, key, title, names, data):
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    top = max([v for _, vals in data for v in vals if v is not None] + [1e-9])
    w, h, group = 60 + 40 * len(names), 300, 36
    bw = group / len(data)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 80}">',
             f'<text x="10" y="16" font-size="14">{title}</text>']
    for gi, name in enumerate(names):
        x0 = 50 + gi * 40
        for si, (_, vals) in enumerate(data):
            if vals[gi] is None:
                continue
            bh = (h - 40) * vals[gi] / top
            parts.append(f'<rect x="{x0 + si * bw:.1f}" y="{h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                         f'fill="{colors[si % len(colors)]}"/>')
        parts.append(f'<text x="{x0}" y="{h + 12}" font-size="10" transform="rotate(45 {x0} {h + 12})">{name}</text>')
    for si, (label, _) in enumerate(data):
        parts.append(f'<text x="{10 + si * 160}" y="{h + 75}" font-size="10" fill="{colors[si % len(colors)]}">{label}</text>')
    parts.append("</svg>")
    with open(os.path.join(out_dir, key + ".svg"), "w") as f:
        f.write("\n".join(parts))
    return key + ".svg"


def write(out_dir, results):
    made = plots(out_dir, results)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(markdown(results, made))


if __name__ == "__main__":
    with open(os.path.join(sys.argv[1], "results.json")) as fh:
        write(sys.argv[1], json.load(fh))
