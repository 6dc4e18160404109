#!/usr/bin/env python3
"""Build OCI image layouts from layer recipes written in Python (integration-test harness).

This is the source of every image the lazyfs integration tests mount. It needs only the Python standard
library (plus the `zstd` CLI for the optional zstd layers).

A *recipe* is plain JSON-able data:

    {"name": "features", "tag": "features",
     "layers": [{"compression": "gzip", "entries": [entry, ...]}, ...]}

Entries are made with the helpers below (`directory`, `regular`, `symlink`, `hardlink`, `fifo`, `chardev`,
`blockdev`, `whiteout`, `opaque`). Every entry takes `mode` (permission bits incl. suid/sgid/sticky),
`uid`, `gid`, `mtime` (seconds) and optional `mtime_nsec`, and `xattrs` (name -> bytes; `user.*`,
`security.capability`, ...). Regular-file content is described, not stored, so big files cost nothing
until the image is built: `data=b"..."`, `zeros(size, patches)` (a sparse-looking file: zeros with a few
known bytes) or `pseudo_random(size, seed)` (cheap, incompressible, no two 4 KiB pages equal).

Layers are written in PAX format (255-byte names, unicode, SCHILY.xattr.* records, nanosecond mtimes)
and compressed as tar+gzip (default), plain tar or tar+zstd (only when the `zstd` CLI exists; see
`zstd_available()`). Parent directories a layer needs but does not list are added with default metadata,
the way Docker writes layers.

Images are cached: `build(recipe)` returns `$LAZYFS_TEST_CACHE/images/<sha256 of recipe + builder
version>/` (default cache `/var/cache/lazyfs-tests`), building into a temporary directory next to it and
renaming it into place, so a second run (or a concurrent one) reuses the result.

CLI:  python3 imagebuilder.py build [features|big|...]   prints the OCI layout directory and tag.
      python3 imagebuilder.py list
"""

import base64
import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

# Bump when the bytes the builder writes for an unchanged recipe change; it is part of the cache key.
BUILDER_VERSION = 3

DEFAULT_MTIME = 1_600_000_000  # 2020-09-13; a fixed stamp keeps builds reproducible.
DEFAULT_CACHE = "/var/cache/lazyfs-tests"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = {
    "tar": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
REF_NAME = "org.opencontainers.image.ref.name"
PAGE = 4096


# ---------------------------------------------------------------------------------------------------
# Entry helpers (recipes are JSON-able dicts; bytes are stored base64 so the recipe can be hashed).

def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    return base64.b64decode(text.encode("ascii"))


def _entry(kind, path, mode, uid=0, gid=0, mtime=DEFAULT_MTIME, mtime_nsec=None, xattrs=None, **extra):
    entry = {"kind": kind, "path": path.strip("/"), "mode": mode, "uid": uid, "gid": gid, "mtime": mtime}
    if mtime_nsec is not None:
        entry["mtime_nsec"] = mtime_nsec
    if xattrs:
        entry["xattrs"] = {name: _b64(value) for name, value in sorted(xattrs.items())}
    entry.update(extra)
    return entry


def directory(path, mode=0o755, **kw):
    return _entry("dir", path, mode, **kw)


def regular(path, data=b"", mode=0o644, content=None, **kw):
    """A regular file; `content` (from zeros()/pseudo_random()) overrides `data`."""
    if content is None:
        content = {"data": _b64(data)}
    return _entry("file", path, mode, content=content, **kw)


def zeros(size, patches=()):
    """Content descriptor: `size` zero bytes with `patches` [(offset, bytes)] written over them."""
    return {"zeros": size, "patches": [[off, _b64(b)] for off, b in sorted(patches)]}


def pseudo_random(size, seed):
    """Content descriptor: incompressible bytes, cheap to generate, every 4 KiB page distinct."""
    return {"random": size, "seed": seed}


def symlink(path, target, mode=0o777, **kw):
    return _entry("symlink", path, mode, target=target, **kw)


def hardlink(path, target, **kw):
    """A hardlink to `target`, a path earlier in the same layer (metadata comes from the target)."""
    return _entry("hardlink", path, 0o644, target=target.strip("/"), **kw)


def fifo(path, mode=0o644, **kw):
    return _entry("fifo", path, mode, **kw)


def chardev(path, major, minor, mode=0o666, **kw):
    return _entry("chardev", path, mode, major=major, minor=minor, **kw)


def blockdev(path, major, minor, mode=0o660, **kw):
    return _entry("blockdev", path, mode, major=major, minor=minor, **kw)


def whiteout(path):
    """Hide `path` (from lower layers): written as DIR/.wh.NAME."""
    parent, _, name = path.strip("/").rpartition("/")
    return _entry("file", f"{parent}/.wh.{name}" if parent else f".wh.{name}", 0o644,
                  content={"data": ""}, whiteout=True)


def opaque(dir_path):
    """Make `dir_path` opaque: nothing from lower layers shows through. Written as DIR/.wh..wh..opq."""
    return _entry("file", f"{dir_path.strip('/')}/.wh..wh..opq", 0o644, content={"data": ""}, whiteout=True)


def layer(entries, compression="gzip", level=6):
    return {"compression": compression, "level": level, "entries": list(entries)}


def recipe(name, layers, tag=None):
    return {"name": name, "tag": tag or name, "layers": list(layers)}


# ---------------------------------------------------------------------------------------------------
# Content streams.

def content_size(content):
    if "data" in content:
        return len(_unb64(content["data"]))
    if "zeros" in content:
        return content["zeros"]
    return content["random"]


class ContentReader(io.RawIOBase):
    """A readable stream of a content descriptor, generated on the fly (never held in memory whole)."""

    POOL_PAGES = 4096  # 16 MiB pool of random pages, reused with a distinct 16-byte header per page.

    def __init__(self, content):
        super().__init__()
        self.content = content
        self.size = content_size(content)
        self.pos = 0
        if "data" in content:
            self.data = _unb64(content["data"])
        elif "zeros" in content:
            self.patches = [(off, _unb64(b)) for off, b in content["patches"]]
        else:
            import random
            self.seed = content["seed"]
            self.pool = random.Random(self.seed).randbytes(self.POOL_PAGES * PAGE)

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        start, self.pos = self.pos, self.pos + n
        return self._range(start, start + n)

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def _range(self, start, end):
        if "data" in self.content:
            return self.data[start:end]
        if "zeros" in self.content:
            out = bytearray(end - start)
            for off, patch in self.patches:
                lo, hi = max(off, start), min(off + len(patch), end)
                if lo < hi:
                    out[lo - start:hi - start] = patch[lo - off:hi - off]
            return bytes(out)
        first, last = start // PAGE, (end - 1) // PAGE
        pages = b"".join(self._page(p) for p in range(first, last + 1))
        return pages[start - first * PAGE:end - first * PAGE]

    def _page(self, index):
        slot = (index * 2654435761) % self.POOL_PAGES
        body = self.pool[slot * PAGE + 16:(slot + 1) * PAGE]
        return struct.pack("<QQ", self.seed, index) + body


def content_bytes(content):
    """The whole content (for small files and tests)."""
    return ContentReader(content).read()


def content_sha256(content):
    reader, digest = ContentReader(content), hashlib.sha256()
    while chunk := reader.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Layer writing.

def _pax_text(value):
    """PAX values are str in tarfile; arbitrary bytes survive via surrogateescape (hdrcharset=BINARY)."""
    return value.decode("utf-8", "surrogateescape")


def tarinfo_for(entry):
    """The TarInfo (PAX) for one recipe entry; the payload size is set for regular files."""
    info = tarfile.TarInfo(entry["path"])
    info.mode = entry["mode"]
    info.uid, info.gid = entry["uid"], entry["gid"]
    info.uname = info.gname = ""
    info.mtime = entry["mtime"]
    if "mtime_nsec" in entry:
        info.pax_headers["mtime"] = f"{entry['mtime']}.{entry['mtime_nsec']:09d}"
    for name, value in entry.get("xattrs", {}).items():
        info.pax_headers["SCHILY.xattr." + name] = _pax_text(_unb64(value))
    kind = entry["kind"]
    if kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "file":
        info.type = tarfile.REGTYPE
        info.size = content_size(entry["content"])
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry["target"]
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, entry["target"]
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    elif kind in ("chardev", "blockdev"):
        info.type = tarfile.CHRTYPE if kind == "chardev" else tarfile.BLKTYPE
        info.devmajor, info.devminor = entry["major"], entry["minor"]
    else:
        raise ValueError(f"unknown entry kind {kind!r} for {entry['path']!r}")
    return info


def with_parents(entries):
    """Entries plus default directory entries for parents the layer does not list, each before its
    first child. Explicitly listed directories must come before their children."""
    listed = {e["path"] for e in entries if e["kind"] == "dir"}
    emitted, out = set(), []
    for entry in entries:
        parts = entry["path"].split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent in emitted:
                continue
            if parent in listed:
                raise ValueError(f"directory {parent!r} is listed after its child {entry['path']!r}")
            out.append(directory(parent))
            emitted.add(parent)
        out.append(entry)
        if entry["kind"] == "dir":
            emitted.add(entry["path"])
    return out


class _HashingWriter(io.RawIOBase):
    """Passes writes through to `sink` while hashing them (the layer's diff_id)."""

    def __init__(self, sink):
        super().__init__()
        self.sink, self.digest = sink, hashlib.sha256()

    def writable(self):
        return True

    def write(self, data):
        self.digest.update(data)
        self.sink.write(data)
        return len(data)


class ParallelGzipWriter(io.RawIOBase):
    """tar+gzip output as a series of gzip members compressed on a thread pool (zlib drops the GIL).

    Concatenated gzip members are one valid gzip stream (RFC 1952), read as such by Go, libarchive and
    zlib; this makes a 1 GiB layer take seconds instead of a minute."""

    BLOCK = 16 << 20

    def __init__(self, out, level=6):
        super().__init__()
        self.out, self.level, self.buf = out, level, bytearray()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
        self.pending = []

    def writable(self):
        return True

    def write(self, data):
        self.buf += data
        while len(self.buf) >= self.BLOCK:
            self._submit(bytes(self.buf[:self.BLOCK]))
            del self.buf[:self.BLOCK]
        return len(data)

    def _submit(self, block):
        self.pending.append(self.pool.submit(self._member, block, self.level))
        while len(self.pending) > 4 or (self.pending and self.pending[0].done()):
            self.out.write(self.pending.pop(0).result())

    @staticmethod
    def _member(block, level):
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header, mtime 0
        return comp.compress(block) + comp.flush()

    def finish(self):
        if self.buf or not self.pending:
            self._submit(bytes(self.buf))
            self.buf = bytearray()
        for fut in self.pending:
            self.out.write(fut.result())
        self.pending = []
        self.pool.shutdown()


def zstd_available():
    return shutil.which("zstd") is not None


def write_layer(spec, path):
    """Write one layer blob to `path`; returns (diff_id, media_type)."""
    compression = spec.get("compression", "gzip")
    with open(path, "wb") as out:
        proc, sink, gz = None, out, None
        if compression == "gzip":
            gz = sink = ParallelGzipWriter(out, spec.get("level", 6))
        elif compression == "zstd":
            if not zstd_available():
                raise RuntimeError("zstd layers need the zstd CLI (Debian package zstd)")
            proc = subprocess.Popen(["zstd", "-q", "-3", "-c"], stdin=subprocess.PIPE, stdout=out)
            sink = proc.stdin
        elif compression != "tar":
            raise ValueError(f"unknown compression {compression!r}")
        hashing = _HashingWriter(sink)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          bufsize=1 << 20, copybufsize=1 << 20) as tar:
            for entry in with_parents(spec["entries"]):
                info = tarinfo_for(entry)
                stream = ContentReader(entry["content"]) if entry["kind"] == "file" else None
                tar.addfile(info, stream)
        if gz:
            gz.finish()
        if proc:
            proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError("zstd failed")
    return "sha256:" + hashing.digest.hexdigest(), MEDIA_LAYER[compression]


# ---------------------------------------------------------------------------------------------------
# OCI layout.

def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def put_blob_file(layout, tmp_path):
    """Move a finished file into blobs/sha256; returns its descriptor core (digest, size)."""
    digest = sha256_file(tmp_path)
    size = os.path.getsize(tmp_path)
    os.replace(tmp_path, os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]))
    return digest, size


def put_blob_bytes(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "wb") as f:
        f.write(data)
    return digest, len(data)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def init_layout(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))


def write_image(layout, tag, layer_descs, diff_ids, annotations=None):
    """Write config, manifest and index.json for already stored layer blobs. `layer_descs` are OCI
    descriptors (mediaType, digest, size[, annotations]). Returns the manifest descriptor."""
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": f"lazyfs imagebuilder layer {i}"} for i in range(len(diff_ids))],
    }
    cdigest, csize = put_blob_bytes(layout, canonical_json(config))
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": cdigest, "size": csize},
                "layers": list(layer_descs)}
    if annotations:
        manifest["annotations"] = annotations
    mdigest, msize = put_blob_bytes(layout, canonical_json(manifest))
    desc = {"mediaType": MEDIA_MANIFEST, "digest": mdigest, "size": msize,
            "annotations": {REF_NAME: tag}}
    write_index(layout, [desc])
    return desc


def write_index(layout, manifest_descs):
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical_json({"schemaVersion": 2, "manifests": manifest_descs}))


def build_into(rec, layout):
    """Build `rec` into the (new) directory `layout`."""
    init_layout(layout)
    descs, diff_ids = [], []
    for i, spec in enumerate(rec["layers"]):
        tmp = os.path.join(layout, f"layer-{i}.tmp")
        diff_id, media_type = write_layer(spec, tmp)
        digest, size = put_blob_file(layout, tmp)
        descs.append({"mediaType": media_type, "digest": digest, "size": size})
        diff_ids.append(diff_id)
    write_image(layout, rec["tag"], descs, diff_ids)
    with open(os.path.join(layout, "recipe.json"), "wb") as f:  # for humans; not part of the image
        f.write(canonical_json({"builder_version": BUILDER_VERSION, "recipe": rec}))


# ---------------------------------------------------------------------------------------------------
# Cache.

def cache_root():
    return os.environ.get("LAZYFS_TEST_CACHE", DEFAULT_CACHE)


def recipe_key(rec):
    return hashlib.sha256(canonical_json({"builder_version": BUILDER_VERSION, "recipe": rec})).hexdigest()


def cached_dir(kind, key, make):
    """`$cache/<kind>/<key>`, created by `make(tmpdir)` into a temp dir and renamed into place."""
    final = os.path.join(cache_root(), kind, key)
    if os.path.isdir(final):
        return final
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=os.path.dirname(final))
    try:
        make(tmp)
        os.rename(tmp, final)
    except OSError:
        if not os.path.isdir(final):  # not a lost race with another builder: a real failure
            raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def build(rec):
    """Build (or reuse) the image for `rec`; returns (layout_dir, tag)."""
    def make(tmp):
        build_into(rec, os.path.join(tmp, "oci"))
    root = cached_dir("images", recipe_key(rec), make)
    return os.path.join(root, "oci"), rec["tag"]


def oci_ref(layout, tag):
    return f"oci:{layout}:{tag}"


def main(argv):
    import recipes
    if len(argv) >= 1 and argv[0] == "list":
        print("\n".join(sorted(recipes.ALL)))
        return 0
    if len(argv) != 2 or argv[0] != "build" or argv[1] not in recipes.ALL:
        print(f"usage: imagebuilder.py build {{{'|'.join(sorted(recipes.ALL))}}} | list", file=sys.stderr)
        return 2
    rec = recipes.ALL[argv[1]]()
    if rec is None:
        return 1
    layout, tag = build(rec)
    print(oci_ref(layout, tag))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv[1:]))
