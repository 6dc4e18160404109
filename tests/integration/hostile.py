#!/usr/bin/env python3
"""Hostile images for lazyfs: a minimal, independent eStargz writer plus a catalogue of broken images.

The writer follows the public eStargz spec (stargz-snapshotter's estargz.md), not lazyfs' code:
  - every non-empty regular file's payload (and each chunk of a big one) starts a new gzip member;
  - the TOC `stargz.index.json` is the last tar entry and starts its own gzip member (tar header, JSON,
    padding and the two end-of-archive blocks);
  - a 51-byte footer follows: an empty gzip member whose extra field is `%016x` of the TOC offset +
    "STARGZ" (subfield id 'S','G');
  - the layer descriptor carries `containerd.io/snapshot/stargz/toc.digest` (sha256 of the TOC JSON) and
    `io.containers.estargz.uncompressed-size`;
  - TOC entries omit zero values, `mode` holds permission bits only, modtime is RFC 3339 UTC, xattrs are
    base64, directories end in '/', the first chunk is `reg`, later ones `chunk`; the last chunk omits
    `chunkSize`; a `.no.prefetch.landmark` (one byte 0x0f) comes first.

Hooks let a case break exactly one thing: rewrite TOC entries, replace the TOC bytes, lie in the
annotation, tamper with one chunk's bytes (the TOC keeps the honest chunkDigest), or cut/damage the blob.

`CASES` lists every broken image with its expected outcome (see `Case`). Each image has a good plain
tar+gzip base layer and a second layer carrying the damage, so a test can check "the affected file gives
EIO, the others read correctly, the daemon stays up, the log names file, layer and cause".

CLI: python3 hostile.py OUTDIR   writes every case to OUTDIR/<name>/ (OCI layouts, tag "hostile").
"""

import base64
import datetime
import gzip
import hashlib
import json
import os
import sys
import tarfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagebuilder as ib  # noqa: E402

TOC_NAME = "stargz.index.json"
TOC_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size"
TAG = "hostile"
BLOCK = 512


def sha256_tag(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gzip_member(data):
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def footer(toc_offset, magic=b"STARGZ"):
    """The 51-byte eStargz footer: gzip header with FEXTRA, an empty stored block, an empty trailer."""
    subfield = b"%016x" % toc_offset + magic
    extra = b"SG" + len(subfield).to_bytes(2, "little") + subfield
    header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + len(extra).to_bytes(2, "little") + extra
    out = header + b"\x01\x00\x00\xff\xff" + bytes(8)
    assert len(out) == 51, len(out)
    return out


def rfc3339(seconds, nsec=0):
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return stamp + (f".{nsec:09d}" if nsec else "") + "Z"


def pad(n):
    return bytes(-n % BLOCK)


class EStargzLayer:
    """Writes imagebuilder entries as one eStargz blob. Call `build()`; then read `blob`, `toc`,
    `toc_bytes`, `diff_id` and `annotations`."""

    TOC_TYPES = {"dir": "dir", "file": "reg", "symlink": "symlink", "hardlink": "hardlink",
                 "fifo": "fifo", "chardev": "char", "blockdev": "block"}

    def __init__(self, entries, chunk_size=4 << 20, tamper=None, mutate_toc=None, toc_bytes=None):
        self.entries = [ib.regular(".no.prefetch.landmark", b"\x0f")] + ib.with_parents(entries)
        self.chunk_size = chunk_size
        self.tamper = tamper or {}          # (path, chunk index) -> replacement bytes (same length)
        self.mutate_toc = mutate_toc        # f(list of TOC entries) -> None, edits in place
        self.toc_bytes_override = toc_bytes
        self.blob = bytearray()
        self.raw = hashlib.sha256()
        self.raw_size = 0
        self.pending = bytearray()

    def _put_raw(self, data):
        self.raw.update(data)
        self.raw_size += len(data)
        self.pending += data

    def _flush(self):
        if self.pending:
            self.blob += gzip_member(bytes(self.pending))
            self.pending = bytearray()

    def _toc_entry(self, entry, info):
        e = {"name": entry["path"] + ("/" if entry["kind"] == "dir" else ""),
             "type": self.TOC_TYPES[entry["kind"]]}
        if entry["mtime"]:
            e["modtime"] = rfc3339(entry["mtime"], entry.get("mtime_nsec", 0))
        if entry["kind"] in ("symlink", "hardlink"):
            e["linkName"] = entry["target"]
        for key, value in (("mode", entry["mode"]), ("uid", entry["uid"]), ("gid", entry["gid"])):
            if value:
                e[key] = value
        if entry["kind"] in ("chardev", "blockdev"):
            e["devMajor"] = entry["major"]
            if entry["minor"]:
                e["devMinor"] = entry["minor"]
        if entry.get("xattrs"):
            e["xattrs"] = dict(entry["xattrs"])  # already base64, as the TOC wants
        return e

    def _write_file(self, entry, e, data):
        e["digest"] = sha256_tag(data)
        if not data:
            return [e]
        e["size"] = len(data)
        self._flush()
        out = []
        for index, start in enumerate(range(0, len(data), self.chunk_size)):
            chunk = data[start:start + self.chunk_size]
            c = e if index == 0 else {"name": e["name"], "type": "chunk", "chunkOffset": start}
            c["offset"] = len(self.blob)
            if start + len(chunk) < len(data):
                c["chunkSize"] = len(chunk)
            c["chunkDigest"] = sha256_tag(chunk)
            written = self.tamper.get((entry["path"], index), chunk)
            assert len(written) == len(chunk), "tampered chunks keep their length"
            self._put_raw(written)
            self._flush()
            out.append(c)
        self._put_raw(pad(len(data)))
        return out

    def build(self):
        toc_entries = []
        for entry in self.entries:
            info = ib.tarinfo_for(entry)
            self._put_raw(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            e = self._toc_entry(entry, info)
            if entry["kind"] == "file":
                toc_entries += self._write_file(entry, e, ib.content_bytes(entry["content"]))
            else:
                toc_entries.append(e)
        if self.mutate_toc:
            self.mutate_toc(toc_entries)
        self.toc = {"version": 1, "entries": toc_entries}
        self.toc_bytes = self.toc_bytes_override or json.dumps(self.toc, indent="\t").encode()
        self._flush()
        toc_offset = len(self.blob)
        info = tarfile.TarInfo(TOC_NAME)
        info.size, info.mode, info.uname, info.gname = len(self.toc_bytes), 0o644, "", ""
        self._put_raw(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + self.toc_bytes
                      + pad(len(self.toc_bytes)) + bytes(2 * BLOCK))
        self._flush()
        self.blob += footer(toc_offset)
        self.diff_id = "sha256:" + self.raw.hexdigest()
        self.annotations = {TOC_ANNOTATION: sha256_tag(self.toc_bytes),
                            SIZE_ANNOTATION: str(self.raw_size)}
        return self


# ---------------------------------------------------------------------------------------------------
# Images.

def write_layout(layout, layers):
    """layers: list of (blob bytes, media type, diff_id, annotations or None). Returns manifest desc."""
    ib.init_layout(layout)
    descs, diff_ids = [], []
    for blob, media_type, diff_id, annotations in layers:
        digest, size = ib.put_blob_bytes(layout, bytes(blob))
        desc = {"mediaType": media_type, "digest": digest, "size": size}
        if annotations:
            desc["annotations"] = annotations
        descs.append(desc)
        diff_ids.append(diff_id)
    return ib.write_image(layout, TAG, descs, diff_ids)


def plain_layer(entries, compression="gzip", raw_names=None):
    """A plain tar(+gzip) layer via imagebuilder, returned as (blob, media type, diff_id, None)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer")
        diff_id, media_type = ib.write_layer(ib.layer(entries, compression), path)
        with open(path, "rb") as f:
            return f.read(), media_type, diff_id, None


def raw_tar_layer(members):
    """A tar+gzip layer from (name, data) pairs written verbatim (names are not cleaned)."""
    raw = bytearray()
    for name, data in members:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.uname, info.gname = len(data), 0o644, ib.DEFAULT_MTIME, "", ""
        raw += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + pad(len(data))
    raw += bytes(2 * BLOCK)
    return gzip.compress(bytes(raw), mtime=0), ib.MEDIA_LAYER["gzip"], sha256_tag(bytes(raw)), None


def estargz_layer(layer):
    return layer.blob, ib.MEDIA_LAYER["gzip"], layer.diff_id, layer.annotations


# Content every case shares: a good base layer and good files in the damaged layer.
BASE_FILES = {"base/hello.txt": b"hello from the base layer\n",
              "base/data.bin": bytes(range(256)) * 1024}
GOOD_FILES = {"files/good-small": b"good small file\n",
              "files/good-chunked": (b"0123456789abcdef" * 4096) * 20}  # 1.25 MiB, 5 chunks
MULTI_PATH = "files/multi"
# 4 MiB, 16 chunks of 256 KiB, all distinct: chunks are content-addressed, so a damaged chunk whose
# chunkDigest equals a good chunk's would (rightly) be served from the cache and hide the damage.
MULTI = ib.content_bytes(ib.pseudo_random(4 << 20, seed=99))
CHUNK = 256 << 10


def base_layer():
    return plain_layer([ib.regular(p, d) for p, d in BASE_FILES.items()])


def good_entries(extra=()):
    return [ib.regular(p, d) for p, d in GOOD_FILES.items()] + list(extra)


def expected_good():
    return {**BASE_FILES, **GOOD_FILES}


class Case:
    """One hostile image and what lazyfs must do with it.

    expect: the acceptable outcomes, a tuple of
      "ok"          mount succeeds and equals `umoci unpack` of the same image (control cases);
      "eio"         mount succeeds; reading each path in `bad` fails with EIO; `good` files read correctly;
                    the daemon stays up; the log has a line naming the file, the layer and the cause;
      "fallback"    mount succeeds and every file (including `bad`) reads correctly: lazyfs refused the
                    damaged eStargz index and read the layer as a plain, digest-verified tar+gzip; the
                    log names the layer and why (a line matching `cause`);
      "sanitized"   mount succeeds, `good` files correct, and no entry escapes the root (names with '..'
                    or absolute names are dropped or re-rooted, never followed);
      "mount_fails" `lazyfs mount` exits non-zero with a message matching `cause`, nothing stays mounted.
    cause: regex (case-insensitive) the error line must match, besides naming the file/layer.
    names_layer: a mount failure message must name the damaged layer (first 12 hex digits).
    """

    def __init__(self, name, doc, make, expect, bad=(), good=None, cause="", partial=None,
                 bad_layer=1, expected=None, names_layer=False):
        self.name, self.doc, self.make, self.expect = name, doc, make, tuple(expect)
        self.names_layer = names_layer
        self.bad, self.cause, self.bad_layer = tuple(bad), cause, bad_layer
        self.good = expected_good() if good is None else good
        self.partial = partial or {}   # path -> (offset, length, expected bytes) readable despite damage
        self.expected = expected or {}  # path -> bytes the "fallback" outcome must produce

    def build(self, layout):
        """Write the image to `layout`; returns the damaged layer's digest (or None)."""
        desc = self.make(layout)
        manifest = self._manifest(layout, desc)
        if manifest is None or len(manifest.get("layers", [])) <= self.bad_layer:
            return None
        return manifest["layers"][self.bad_layer]["digest"]

    @staticmethod
    def _manifest(layout, desc):
        path = os.path.join(layout, "blobs", "sha256", desc["digest"].split(":", 1)[1])
        try:
            with open(path, "rb") as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return None


def _image(layout, layer):
    return write_layout(layout, [base_layer(), layer])


def _estargz(extra=(), **kw):
    return EStargzLayer(good_entries(extra), chunk_size=CHUNK, **kw).build()


def _rewrite_blob(layout, desc, index, fn, keep_descriptor=False):
    """Replace layer `index`'s blob with fn(blob); re-address it unless `keep_descriptor`."""
    mpath = os.path.join(layout, "blobs", "sha256", desc["digest"].split(":", 1)[1])
    with open(mpath, "rb") as f:
        manifest = json.load(f)
    ldesc = manifest["layers"][index]
    lpath = os.path.join(layout, "blobs", "sha256", ldesc["digest"].split(":", 1)[1])
    with open(lpath, "rb") as f:
        blob = f.read()
    new = fn(blob)
    if keep_descriptor:
        with open(lpath, "wb") as f:
            f.write(new)
        return desc
    os.unlink(lpath)
    ldesc["digest"], ldesc["size"] = ib.put_blob_bytes(layout, new)
    os.unlink(mpath)
    mdigest, msize = ib.put_blob_bytes(layout, ib.canonical_json(manifest))
    desc = dict(desc, digest=mdigest, size=msize)
    ib.write_index(layout, [desc])
    return desc


def make_control(layout):
    extra = [ib.regular(MULTI_PATH, MULTI), ib.directory("files/dir", mode=0o750, uid=3, gid=4),
             ib.symlink("files/link", "good-small"), ib.hardlink("files/hard", "files/good-small"),
             ib.regular("files/empty", b""), ib.fifo("files/fifo"), ib.chardev("files/null", 1, 3),
             ib.regular("files/xattr", b"x", xattrs={"user.k": b"v"}, mtime=1_500_000_000)]
    return _image(layout, estargz_layer(_estargz(extra)))


def make_truncated(layout):
    desc = _image(layout, estargz_layer(_estargz([ib.regular(MULTI_PATH, MULTI)])))
    return _rewrite_blob(layout, desc, 1, lambda b: b[:len(b) // 2], keep_descriptor=True)


def make_corrupt_footer(layout):
    layer = _estargz([ib.regular(MULTI_PATH, MULTI)])
    layer.blob[-51:] = footer(len(layer.blob) - 51 + 12345, magic=b"STARGY")  # still a valid gzip member
    return _image(layout, estargz_layer(layer))


def make_corrupt_toc_json(layout):
    return _image(layout, estargz_layer(_estargz([ib.regular(MULTI_PATH, MULTI)],
                                                 toc_bytes=b'{"version": 1, "entries": [{"name": "fi')))


def make_toc_digest_mismatch(layout):
    layer = _estargz([ib.regular(MULTI_PATH, MULTI)])
    layer.annotations[TOC_ANNOTATION] = sha256_tag(b"not the toc")
    return _image(layout, estargz_layer(layer))


def make_bad_chunk(layout):
    honest = b"the tampered file's honest content, unlike any other file\n"  # unique chunkDigest
    tampered = b"TAMPERED" + honest[8:]
    last = (len(MULTI) - 1) // CHUNK
    layer = _estargz([ib.regular("files/tampered", honest),
                      ib.regular(MULTI_PATH, MULTI)],
                     tamper={("files/tampered", 0): tampered,
                             (MULTI_PATH, last): b"\xee" * (len(MULTI) - last * CHUNK)})
    return _image(layout, estargz_layer(layer))


def _edit_entries(name, fn):
    def mutate(entries):
        for e in entries:
            if e["name"] == name:
                fn(e)
    return mutate


def make_offset_past_end(layout):
    layer = _estargz([ib.regular("files/far", b"far away\n" * 100)],
                     mutate_toc=_edit_entries("files/far", lambda e: e.update(offset=1 << 40)))
    return _image(layout, estargz_layer(layer))


def make_absurd_size(layout):
    layer = _estargz([ib.regular("files/huge", b"not huge at all\n")],
                     mutate_toc=_edit_entries("files/huge", lambda e: e.update(size=1 << 62)))
    return _image(layout, estargz_layer(layer))


HELLO = b"hello"


def _claim_digest_of_hello(size):
    def claim(e):
        e.update(size=size, chunkDigest=sha256_tag(HELLO))
    return claim


def make_digest_size_lie(layout):
    # Two entries name the digest of files/hello (5 bytes) with sizes of their own. The cache is keyed by
    # digest and shared by every image on the host, so after files/hello is read a lying entry finds
    # "its" chunk there: serving the claimed length would copy heap memory after the 5 real bytes.
    liars = {"files/liar-3000": 3000, "files/liar-4m": 4 << 20}
    extra = [ib.regular("files/hello", HELLO)] + [ib.regular(p, b"x" * 3000) for p in liars]

    def mutate(entries):
        for path, size in liars.items():
            _edit_entries(path, _claim_digest_of_hello(size))(entries)
    return _image(layout, estargz_layer(_estargz(extra, mutate_toc=mutate)))


HUGE_CHUNK = 32 << 20


def make_huge_chunk(layout):
    # A valid chunk bigger than a reader will inflate at once (zeros: ~32 KiB compressed). Inflating it
    # whole for a small read would cost its size in memory and in cache; the layer is read whole instead.
    extra = [ib.regular("files/zeros", bytes(HUGE_CHUNK))]
    return _image(layout, estargz_layer(EStargzLayer(good_entries(extra), chunk_size=HUGE_CHUNK).build()))


def make_dotdot_estargz(layout):
    extra = []
    for name, data in (("../escape-dotdot", b"escaped\n"), ("/abs-file", b"absolute\n"),
                       ("files/../../escape-nested", b"nested escape\n")):
        entry = ib.regular("placeholder", data)
        entry["path"] = name  # verbatim: the helpers would clean it
        extra.append(entry)
    layer = EStargzLayer(good_entries(), chunk_size=CHUNK)
    layer.entries += extra  # appended after with_parents, which would try to create '..'
    return _image(layout, estargz_layer(layer.build()))


def make_duplicates(layout):
    layer = _estargz([ib.regular("files/dup", b"first version\n"), ib.regular("files/dup", b"second!\n")])
    return _image(layout, estargz_layer(layer))


def make_missing_blob(layout):
    desc = _image(layout, estargz_layer(_estargz()))
    manifest = Case._manifest(layout, desc)
    os.unlink(os.path.join(layout, "blobs", "sha256", manifest["layers"][1]["digest"].split(":", 1)[1]))
    return desc


def make_missing_config(layout):
    desc = _image(layout, estargz_layer(_estargz()))
    manifest = Case._manifest(layout, desc)
    os.unlink(os.path.join(layout, "blobs", "sha256", manifest["config"]["digest"].split(":", 1)[1]))
    return desc


def make_corrupt_manifest(layout):
    ib.init_layout(layout)
    digest, size = ib.put_blob_bytes(layout, b'{"schemaVersion": 2, "layers": [')
    desc = {"mediaType": ib.MEDIA_MANIFEST, "digest": digest, "size": size, "annotations": {ib.REF_NAME: TAG}}
    ib.write_index(layout, [desc])
    return desc


def make_tar_dotdot(layout):
    members = [("files/good-small", GOOD_FILES["files/good-small"]),
               ("../evil-dotdot", b"evil\n"), ("/evil-abs", b"evil\n"),
               ("files/../../evil-nested", b"evil\n"),
               ("files/good-chunked", GOOD_FILES["files/good-chunked"])]
    return _image(layout, raw_tar_layer(members))


def make_truncated_targz(layout):
    entries = good_entries([ib.regular(MULTI_PATH, MULTI)])
    desc = _image(layout, plain_layer(entries))
    # The blob is cut but re-addressed, so its digest checks out: only decompression can notice.
    return _rewrite_blob(layout, desc, 1, lambda b: b[:len(b) * 2 // 3])


CASES = [
    Case("control-estargz", "a well-formed eStargz layer from this writer (proves the writer and reader "
         "agree with umoci)", make_control, ["ok"]),
    Case("truncated-estargz", "eStargz blob cut in half, descriptor unchanged: the TOC is unreachable, "
         "so the union cannot be built", make_truncated, ["mount_fails"],
         cause=r"trunc|short|size|eof|footer|digest|range", names_layer=True),
    Case("corrupt-footer", "footer magic STARGY and offset wrong (still valid gzip): not an eStargz "
         "layer; either refuse or read it as plain tar+gzip", make_corrupt_footer,
         ["mount_fails", "fallback"], cause=r"footer|stargz|toc", expected={MULTI_PATH: MULTI}),
    Case("corrupt-toc-json", "TOC is truncated JSON (annotation matches it)", make_corrupt_toc_json,
         ["mount_fails", "fallback"], cause=r"toc|json|parse", expected={MULTI_PATH: MULTI}),
    Case("toc-digest-mismatch", "TOC is fine but the toc.digest annotation does not match: must not be "
         "trusted", make_toc_digest_mismatch, ["mount_fails", "fallback"], cause=r"digest|toc",
         expected={MULTI_PATH: MULTI}),
    Case("bad-chunk-digest", "one file's only chunk and another file's last chunk do not match their "
         "chunkDigest; everything else is intact", make_bad_chunk, ["eio"],
         bad=["files/tampered", MULTI_PATH], cause=r"digest|verif|mismatch|checksum|corrupt",
         partial={MULTI_PATH: (0, 4096, MULTI[:4096])}),
    Case("offset-past-end", "one TOC entry's offset is 1 TiB, past the end of the blob; either that file "
         "reads as EIO or the TOC is refused and the layer read whole", make_offset_past_end,
         ["eio", "fallback"], bad=["files/far"], cause=r"offset|range|past|end|eof|short|size|bounds",
         expected={"files/far": b"far away\n" * 100}),
    Case("absurd-size", "one TOC entry claims size 2^62; nothing may try to allocate it; either that file "
         "reads as EIO or the TOC is refused and the layer read whole", make_absurd_size,
         ["eio", "fallback"], bad=["files/huge"], cause=r"size|short|eof|range|mismatch|invalid|large|digest",
         expected={"files/huge": b"not huge at all\n"}),
    Case("digest-size-lie", "two TOC entries name the 5-byte chunk of files/hello with sizes 3000 and "
         "4 MiB: EIO, never the 5 bytes plus heap memory", make_digest_size_lie, ["eio"],
         bad=["files/liar-3000", "files/liar-4m"], cause=r"bytes, but the image says|digest|corrupt",
         good={**expected_good(), "files/hello": HELLO}),
    Case("huge-chunk", "a valid 32 MiB chunk of zeros, past the chunk size limit: the TOC is refused and "
         "the layer read whole (small chunks), so a small read never inflates 32 MiB", make_huge_chunk,
         ["fallback"], bad=["files/zeros"], cause=r"exceeds the \d+ byte limit",
         expected={"files/zeros": bytes(HUGE_CHUNK)}),
    Case("dotdot-estargz", "TOC and tar names '../x', '/x' and 'a/../../x'", make_dotdot_estargz,
         ["sanitized"]),
    Case("duplicate-entries", "the same file twice in one layer: the later entry wins, as in tar",
         make_duplicates, ["ok"]),
    Case("missing-blob", "the manifest references a layer blob the layout does not have", make_missing_blob,
         ["mount_fails"], cause=r"blob|not found|no such|missing|enoent", names_layer=True),
    Case("missing-config", "the config blob is absent", make_missing_config, ["mount_fails"],
         cause=r"config|blob|not found|no such|missing|enoent"),
    Case("corrupt-manifest", "the manifest is truncated JSON", make_corrupt_manifest, ["mount_fails"],
         cause=r"manifest|json|parse"),
    Case("tar-dotdot", "plain tar+gzip layer with names '../x', '/x', 'a/../../x'", make_tar_dotdot,
         ["sanitized"]),
    Case("truncated-targz", "plain tar+gzip layer cut at 2/3 (digest re-computed, so only decompression "
         "notices); the layer's full listing is unknowable, so the union cannot be built",
         make_truncated_targz, ["mount_fails"], cause=r"trunc|eof|gzip|inflate|decompress|unexpected|short", names_layer=True),
]
ESCAPE_NAMES = ("escape-dotdot", "abs-file", "escape-nested", "evil-dotdot", "evil-abs", "evil-nested")


def main(argv):
    if len(argv) != 1:
        print("usage: hostile.py OUTDIR", file=sys.stderr)
        return 2
    for case in CASES:
        layout = os.path.join(argv[0], case.name)
        digest = case.build(layout)
        print(f"{case.name:22} {'/'.join(case.expect):20} {layout}:{TAG} damaged layer {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
