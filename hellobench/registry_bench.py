#!/usr/bin/env python3
"""Registry benchmark (issue 3): what a cold lazy mount from a local registry costs on the wire.

    python3 hellobench/registry_bench.py --lazyfs build/tools/lazyfs [--runs 3]

The features image (tests/integration/recipes.py: 20,000-entry dir, 200 MiB sparse file, 24 MiB random
file, ...) is converted to eStargz straight into a docker-registry on 127.0.0.1 (`lazyfs convert oci:…
docker://…`). lazyfs then mounts it through a counting pass-through proxy (tests/integration/
fault_proxy.py), which sees every HTTP request and its body bytes. The chunk table comes from the TOCs
themselves (fetched here with urllib), so "touched chunks" and their compressed sizes are exact.

Figures:
  mount           requests and body bytes of a cold mount, against manifest + config + footers + TOCs
  small reads     a scripted set of small reads: requests and bytes vs. unique chunks touched (goal: no
                  more requests than chunks, bytes within 1.1x of the chunks' compressed size)
  tar             `tar cf - MOUNT` of a cold mount: the same comparison over every chunk tar reads
  mount time      `lazyfs mount` wall time, cold (manifest + TOCs fetched, tree built) and with the
                  merged tree cached (same cache dir, second mount)
Bytes are HTTP body bytes (headers add ~0.3 KiB per request). Prints; asserts nothing.
"""

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import imagebuilder  # noqa: E402
import recipes  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from registry_harness import Registry  # noqa: E402

LAZYFS = None
MiB = 1 << 20
FOOTER = 51


def run(*args, **kw):
    return subprocess.run([LAZYFS, *args], check=True, capture_output=True, text=True, **kw)


def get(url, rng=None):
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    if rng:
        req.add_header("Range", f"bytes={rng[0]}-{rng[1] - 1}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def chunk_table(host, repo, tag):
    """Per layer: {path: [(chunkOffset, chunkSize, blob_offset, compressed_len, chunkDigest)]}, plus the
    total bytes of manifest + config + footers + TOCs (what a mount must fetch)."""
    manifest_bytes = get(f"http://{host}/v2/{repo}/manifests/{tag}")
    manifest = json.loads(manifest_bytes)
    base = f"http://{host}/v2/{repo}/blobs/"
    mandatory = len(manifest_bytes) + manifest["config"]["size"]
    layers = []
    for layer in manifest["layers"]:
        size = layer["size"]
        footer = get(base + layer["digest"], (size - FOOTER, size))
        toc_offset = int(footer[16:32].decode(), 16)  # gzip extra field: %016x + "STARGZ"
        toc_member = get(base + layer["digest"], (toc_offset, size - FOOTER))
        mandatory += FOOTER + len(toc_member)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(toc_member))) as t:
            toc = json.load(t.extractfile("stargz.index.json"))
        entries = toc["entries"]
        offsets = sorted({e["offset"] for e in entries if e.get("offset")} | {toc_offset})
        following = {a: b for a, b in zip(offsets, offsets[1:])}
        files, current = {}, None
        for e in entries:
            if e["type"] == "reg":
                current = e["name"].rstrip("/")
                if e.get("size", 0) == 0:
                    continue
                chunk_size = e.get("chunkSize") or e["size"]
                files[current] = [(0, chunk_size, e["offset"], following[e["offset"]] - e["offset"],
                                   e.get("chunkDigest") or e.get("digest"))]
            elif e["type"] == "chunk":
                files[current].append((e["chunkOffset"], e.get("chunkSize", 0), e["offset"],
                                       following[e["offset"]] - e["offset"], e["chunkDigest"]))
        for chunks in files.values():  # the last chunk may omit chunkSize
            for i, c in enumerate(chunks):
                if c[1] == 0:
                    chunks[i] = (c[0], 1 << 62, c[2], c[3], c[4])
        layers.append(files)
    return layers, mandatory


def owner_layer(layers, path):
    for i in range(len(layers) - 1, -1, -1):
        if path in layers[i]:
            return i
    return None


def touched(layers, reads):
    """Unique chunk digests (and their compressed bytes) that reads [(path, offset, length)] touch."""
    seen = {}
    for path, offset, length in reads:
        layer = owner_layer(layers, path)
        if layer is None:
            continue
        for chunk_offset, chunk_size, _, clen, digest in layers[layer][path]:
            if chunk_offset < offset + length and offset < chunk_offset + chunk_size:
                seen[digest] = clen
    return len(seen), sum(seen.values())


class Mount:
    def __init__(self, ref, host, cache=None):
        self.dir = tempfile.mkdtemp(prefix="lazyfs-regbench-")
        self.mnt = os.path.join(self.dir, "mnt")
        self.cache = cache or os.path.join(self.dir, "cache")
        os.makedirs(self.mnt)
        os.makedirs(self.cache, exist_ok=True)
        start = time.perf_counter()
        run("mount", "--cache-dir", self.cache, "--log-file", os.path.join(self.dir, "log"),
            "--insecure-registry", host, ref, self.mnt)
        self.seconds = time.perf_counter() - start

    def close(self, keep_cache=False):
        subprocess.run(["fusermount3", "-u", self.mnt], check=False)
        if not keep_cache:
            shutil.rmtree(self.dir, ignore_errors=True)


def wire(proxy):
    gets = proxy.blob_gets()
    return len(proxy.record()), sum(e.body_bytes for e in proxy.record()), len(gets)


def report(name, requests, body, n_chunks, chunk_bytes):
    ratio = body / chunk_bytes if chunk_bytes else float("nan")
    print(f"  {name:<12} {requests:6d} requests, {body / MiB:9.2f} MiB on the wire | touched {n_chunks:5d} chunks, "
          f"{chunk_bytes / MiB:9.2f} MiB compressed | requests/chunks {requests / max(n_chunks, 1):.2f}, "
          f"bytes ratio {ratio:.3f}")


def main():
    global LAZYFS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lazyfs", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    LAZYFS = os.path.abspath(args.lazyfs)
    os.environ["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
    layout, tag = imagebuilder.build(recipes.features())
    with Registry() as reg, FaultProxy(reg.host) as proxy:
        t = time.perf_counter()
        run("convert", "-q", "--insecure-registry", reg.host, f"oci:{layout}:{tag}",
            f"docker://{reg.host}/features:estargz")
        print(f"convert oci -> docker://: {time.perf_counter() - t:.1f} s")
        layers, mandatory = chunk_table(reg.host, "features", "estargz")
        ref = f"docker://{proxy.host}/features:estargz"

        print("cold mount from the local registry (through a counting proxy):")
        proxy.reset_record()
        m = Mount(ref, proxy.host)
        requests, body, _ = wire(proxy)
        print(f"  {'mount':<12} {requests:6d} requests, {body / 1024:9.1f} KiB on the wire | manifest+config+"
              f"footers+TOCs {mandatory / 1024:.1f} KiB ({len(layers)} layers)")
        reads = [(recipes.SMALL_PATH, 0, 4096), ("etc/passwd", 0, 4096), (recipes.RANDOM_PATH, 0, 4096),
                 (recipes.RANDOM_PATH, 5 * MiB + 100, 4096), (recipes.RANDOM_PATH, 17 * MiB, 64 * 1024),
                 (recipes.SPARSE_PATH, 100 * MiB, 4096), (f"{recipes.MANY_DIR}/entry-01234", 0, 4096),
                 (recipes.HARDLINK_GROUP[0], 0, 4096)]
        proxy.reset_record()
        for path, offset, length in reads:
            with open(os.path.join(m.mnt, path), "rb", buffering=0) as f:
                f.seek(offset)
                f.read(length)
        requests, body, _ = wire(proxy)
        # The kernel reads ahead within a file (up to 128 KiB here): count what it really asked for.
        report("small reads", requests, body, *touched(layers, [(p, o, max(l, 128 * 1024)) for p, o, l in reads]))
        m.close()

        proxy.reset_record()
        m = Mount(ref, proxy.host)
        proxy.reset_record()
        t = time.perf_counter()
        # Through a pipe: GNU tar writing to /dev/null skips reading file contents.
        subprocess.run(f"tar cf - -C '{m.mnt}' . | cat > /dev/null", shell=True, check=True)
        tar_s = time.perf_counter() - t
        requests, body, _ = wire(proxy)
        everything = [(path, 0, 1 << 62) for files in layers for path in files]
        visible = [r for r in everything if os.path.isfile(os.path.join(m.mnt, r[0]))
                   and not os.path.islink(os.path.join(m.mnt, r[0]))]
        report("tar cf -", requests, body, *touched(layers, visible))
        print(f"  (tar took {tar_s:.1f} s)")
        m.close()

        cold, cached = [], []
        for _ in range(args.runs):
            m = Mount(ref, proxy.host)
            cold.append(m.seconds)
            m.close(keep_cache=True)
            again = Mount(ref, proxy.host, cache=m.cache)
            cached.append(again.seconds)
            again.close()
            shutil.rmtree(m.dir, ignore_errors=True)
        print(f"mount time ({recipes.MANY_COUNT}+ files, median of {args.runs}): cold {statistics.median(cold):.2f} s, "
              f"merged tree cached {statistics.median(cached):.2f} s")


if __name__ == "__main__":
    main()
