#!/usr/bin/env python3
"""eStargz interoperability with an independent producer: stargz-snapshotter's `ctr-remote` (DESIGN.md,
"Layer formats" item 4).

Run as root:  python3 test_ctr_remote.py --lazyfs /path/to/lazyfs   (needs containerd, ctr, ctr-remote)

Images: the "features" image (recipes.py) and a small "chunks" image made here whose files sit on and
around the 4 MiB chunk boundary (ctr-remote's default chunk size). Each is converted twice: by
`ctr-remote images convert --estargz --oci` (ctr_remote.py, cached) and by `lazyfs convert --chunk-size
4194304`. Checks:
  (a) ctr-remote's images mount with lazyfs, every layer lazily (its TOC was accepted: no layer fell
      back to whole-layer streaming), and the mount equals `umoci unpack` of the original image;
  (b) both producers' blobs follow the spec (checked here independently of either producer): footer,
      TOC as the last tar entry in its own gzip member, toc.digest and uncompressed-size annotations,
      diff_ids, every `offset` starting a gzip member whose bytes hash to `chunkDigest`, file digests,
      chunks covering each file, TOC entries describing the tar entries one for one;
  (c) the two producers agree, layer by layer: the same entry names, types, sizes, modes, uid/gid,
      linkName, device numbers, xattrs, digests and (whole-second) mtimes, the same set of TOC fields
      per entry (both omit zero values), the same chunk layout, the same footer bytes apart from the
      offset, the same TOC tar header, the same layer media types and annotation keys.
Differences the spec allows are tolerated explicitly, each with the reason, in TOLERATED below; every
tolerated difference that actually occurs is printed to stderr so the log shows what was seen.
"""

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ctr_remote  # noqa: E402
import harness  # noqa: E402
import imagebuilder as ib  # noqa: E402
import recipes  # noqa: E402
import treecmp  # noqa: E402

TOC_NAME = "stargz.index.json"
TOC_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size"
LANDMARKS = (".prefetch.landmark", ".no.prefetch.landmark")
FOOTER_SIZE = 51
CHUNK = 4 << 20   # ctr-remote's default chunk size; lazyfs convert gets --chunk-size CHUNK
# Prioritized files for ctr-remote's --estargz-record-in conversion of the features image: a plain file, a
# hardlink (its target moves too), a multi-chunk file (layer 1) and a file of layer 2.
PRIORITIZED = ["etc/passwd", "links/hl-b", recipes.RANDOM_PATH, recipes.SMALL_PATH]

# Fields the spec defines for a TOCEntry (plus stargz's NumLink, which Go may write).
SPEC_FIELDS = {"name", "type", "size", "modtime", "linkName", "mode", "uid", "gid", "userName", "groupName",
               "devMajor", "devMinor", "xattrs", "digest", "offset", "chunkOffset", "chunkSize",
               "chunkDigest", "NumLink"}

TOLERATED = {
    "order": "the spec fixes no entry order (only the landmark's place); readers key entries by name",
    "landmark-mode": "a landmark's mode is format data, never shown; ctr-remote writes 0 (omitted), "
                     "lazyfs 0644",
    "last-chunk-size": "the spec says the last chunk's chunkSize MUST be zero (omitted), which lazyfs "
                       "writes; ctr-remote sets it when the last chunk happens to be a full chunk; "
                       "readers derive it from the file size either way",
    "modtime-fraction": "ctr-remote writes whole seconds; lazyfs keeps nanoseconds as fractional "
                        "RFC 3339 seconds, which the spec's RFC 3339 allows",
    "json-field-order": "JSON object member order carries no meaning",
    "toc-header-mode": "the spec says nothing of the TOC's own tar header mode (ctr-remote: 0, lazyfs: "
                       "0644); only extractors that do not know eStargz ever create that file",
    "tar-encoding": "the tar header encoding (pax records, GNU vs ustar) is not part of eStargz: so the "
                    "uncompressed size, diff_id, toc.digest and offsets differ; each is checked for "
                    "consistency with its own blob",
    "compression": "gzip level and deflate output differ (ctr-remote: level 9); only member boundaries "
                   "are format",
}


def chunks_recipe():
    """Files on and around the chunk boundary, plus the cases the spec singles out (empty, one byte)."""
    return ib.recipe("ctr-remote-chunks", [ib.layer([
        ib.regular("c/empty", b""),
        ib.regular("c/one-byte", b"x"),
        ib.regular("c/exactly-one-chunk", content=ib.pseudo_random(CHUNK, seed=21)),
        ib.regular("c/one-chunk-plus-one", content=ib.pseudo_random(CHUNK + 1, seed=22)),
        ib.regular("c/two-chunks", content=ib.pseudo_random(2 * CHUNK, seed=23)),
        ib.regular("c/two-and-a-bit", content=ib.pseudo_random(2 * CHUNK + 12345, seed=24)),
        ib.regular("c/zeros-and-a-bit", content=ib.zeros(3 * CHUNK - 1, [(CHUNK, b"edge")])),
    ])], tag="chunks")


# ---------------------------------------------------------------------------------------------------
# Reading one OCI layout and checking its blobs against the spec.

def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return json.load(f)


def blob_path(layout, digest):
    return os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])


# Annotations lazyfs convert adds (other tools ignore them): kept out of the comparison, checked apart.
OWN_ANNOTATIONS = "dev.lazyfs."
TOC_OFFSET_ANNOTATION = "dev.lazyfs.estargz.toc-offset"


def image_of(layout, tag):
    manifest = read_json_blob(layout, harness.manifest_digest(layout, tag))
    config = read_json_blob(layout, manifest["config"]["digest"])
    return manifest, config


class _HashingReader(io.RawIOBase):
    """Counts and hashes the bytes read through it (the uncompressed tar stream)."""

    def __init__(self, raw):
        self.raw, self.size, self.sha = raw, 0, hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, buf):
        data = self.raw.read(len(buf))
        buf[:len(data)] = data
        self.size += len(data)
        self.sha.update(data)
        return len(data)


def rfc3339_seconds(text):
    """(whole seconds, fraction string) of an RFC 3339 UTC stamp like 2017-07-14T02:40:00.123Z."""
    main, frac = text.rstrip("Z"), ""
    if "." in main:
        main, frac = main.split(".", 1)
    when = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp()), frac


def inflate_prefix(blob, offset, size):
    """The first `size` bytes of the gzip member starting at `offset` (raises zlib.error if none)."""
    d = zlib.decompressobj(31)
    out = d.decompress(memoryview(blob)[offset:], size)
    return out


class Layer:
    """One eStargz layer: its descriptor, blob, footer, TOC and what the spec checks found."""

    def __init__(self, layout, desc, diff_id):
        self.desc, self.diff_id = desc, diff_id
        with open(blob_path(layout, desc["digest"]), "rb") as f:
            self.blob = f.read()
        self.problems = []
        self.footer = self.blob[-FOOTER_SIZE:]
        self.toc_offset = None
        self.toc_json = b""
        self.toc = {"entries": []}
        self.toc_header = None
        self._files = None
        self.check()

    def bad(self, what):
        self.problems.append(what)

    # -- the structure ---------------------------------------------------------------------------------

    def check(self):
        self.check_footer()
        if self.toc_offset is None:
            return
        self.read_toc()
        self.check_annotations()
        if not self.toc["entries"]:
            return
        self.check_chunks()
        self.check_tar_stream()

    def check_footer(self):
        f = self.footer
        if len(self.blob) < FOOTER_SIZE:
            return self.bad("blob shorter than the footer")
        if f[:4] != b"\x1f\x8b\x08\x04":
            return self.bad(f"footer: not a gzip header with only FEXTRA: {f[:4].hex()}")
        if int.from_bytes(f[10:12], "little") != 26 or f[12:14] != b"SG" or \
                int.from_bytes(f[14:16], "little") != 22:
            return self.bad(f"footer: extra field is not XLEN 26 / 'SG' / LEN 22: {f[10:16].hex()}")
        if f[32:38] != b"STARGZ":
            return self.bad("footer: no STARGZ magic")
        if f[38:] != b"\x01\x00\x00\xff\xff" + bytes(8):
            return self.bad(f"footer: not an empty stored block + zero trailer: {f[38:].hex()}")
        try:
            self.toc_offset = int(f[16:32].decode("ascii"), 16)
        except ValueError:
            return self.bad(f"footer: offset {f[16:32]!r} is not hex")
        if zlib.decompressobj(31).decompress(f) != b"":
            self.bad("footer is not an empty gzip member")

    def read_toc(self):
        d = zlib.decompressobj(31)
        try:
            raw = d.decompress(self.blob[self.toc_offset:len(self.blob) - FOOTER_SIZE])
        except zlib.error as e:
            return self.bad(f"TOC member at {self.toc_offset}: {e}")
        if not d.eof or d.unused_data:
            self.bad("TOC is not exactly one gzip member between its offset and the footer")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as t:
            first = t.next()
            if first is None or first.name != TOC_NAME or not first.isreg():
                return self.bad(f"TOC member's first tar entry is {first and first.name!r}")
            self.toc_header = {"name": first.name, "mode": first.mode, "uid": first.uid, "gid": first.gid,
                               "type": first.type, "uname": first.uname, "gname": first.gname,
                               "mtime": first.mtime}
            self.toc_json = t.extractfile(first).read()
            if t.next() is not None:
                self.bad("TOC member holds more than the TOC entry and the end-of-archive blocks")
        self.toc = json.loads(self.toc_json)
        if set(self.toc) != {"version", "entries"} or self.toc["version"] != 1:
            self.bad(f"TOC top level: keys {sorted(self.toc)}, version {self.toc.get('version')}")
        for i, e in enumerate(self.toc["entries"]):
            extra = set(e) - SPEC_FIELDS
            if extra:
                self.bad(f"TOC entry {i} ({e.get('name')!r}): fields outside the spec {sorted(extra)}")
            if e.get("name") == TOC_NAME:
                self.bad("the TOC lists itself")

    def check_annotations(self):
        ann = self.desc.get("annotations", {})
        want = "sha256:" + hashlib.sha256(self.toc_json).hexdigest()
        if ann.get(TOC_ANNOTATION) != want:
            self.bad(f"{TOC_ANNOTATION} {ann.get(TOC_ANNOTATION)} != sha256 of the TOC {want}")
        if SIZE_ANNOTATION not in ann:
            self.bad(f"no {SIZE_ANNOTATION} annotation")
        if self.desc.get("size") != len(self.blob):
            self.bad(f"descriptor size {self.desc.get('size')} != blob size {len(self.blob)}")

    def files(self):
        """name -> [reg entry, chunk entries...] for regular files, in TOC order (computed once)."""
        if self._files is not None:
            return self._files
        out = self._files = {}
        for e in self.toc["entries"]:
            if e["type"] == "reg":
                out[e["name"]] = [e]
            elif e["type"] == "chunk":
                if e["name"] not in out:
                    self.bad(f"chunk of {e['name']!r} without a preceding reg entry")
                    continue
                out[e["name"]].append(e)
        return out

    def chunk_layout(self, name):
        """[(chunkOffset, size, chunkDigest, chunkSize as written or None)] of one file."""
        entries = self.files()[name]
        size = entries[0].get("size", 0)
        out = []
        for k, e in enumerate(entries):
            start = e.get("chunkOffset", 0)
            end = entries[k + 1].get("chunkOffset", 0) if k + 1 < len(entries) else size
            out.append((start, end - start, e.get("chunkDigest"), e.get("chunkSize")))
        return out

    def check_chunks(self):
        for name, entries in self.files().items():
            size = entries[0].get("size", 0)
            if size == 0:
                if len(entries) > 1 or any(k in entries[0] for k in ("offset", "chunkDigest", "chunkSize")):
                    self.bad(f"{name}: empty file with data fields {entries[0]}")
                if entries[0].get("digest") != "sha256:" + hashlib.sha256(b"").hexdigest():
                    self.bad(f"{name}: empty file's digest {entries[0].get('digest')}")
                continue
            whole = hashlib.sha256()
            layout = self.chunk_layout(name)
            for k, ((start, length, digest, written), e) in enumerate(zip(layout, entries)):
                last = k + 1 == len(layout)
                if k > 0 and (e["type"] != "chunk" or start == 0):
                    self.bad(f"{name}: chunk {k} is {e['type']} at chunkOffset {start}")
                if length <= 0:
                    self.bad(f"{name}: chunk {k} at {start} is empty or overlaps the next")
                    continue
                if not last and written != length:
                    self.bad(f"{name}: chunk {k} chunkSize {written}, but the next chunk starts "
                             f"{length} bytes later")
                if last and written not in (None, length):
                    self.bad(f"{name}: last chunk chunkSize {written} != the {length} bytes left")
                if "offset" not in e or not (0 <= e["offset"] < self.toc_offset):
                    self.bad(f"{name}: chunk {k} offset {e.get('offset')} not in the blob's data")
                    continue
                try:
                    data = inflate_prefix(self.blob, e["offset"], length)
                except zlib.error as err:
                    self.bad(f"{name}: chunk {k} offset {e['offset']} is no gzip member: {err}")
                    continue
                if len(data) != length:
                    self.bad(f"{name}: chunk {k} inflates to {len(data)} of {length} bytes")
                if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                    self.bad(f"{name}: chunk {k} bytes do not hash to chunkDigest {digest}")
                whole.update(data)
            if entries[0].get("digest") != "sha256:" + whole.hexdigest():
                self.bad(f"{name}: digest {entries[0].get('digest')} is not the sha256 of its chunks")

    def check_tar_stream(self):
        """The whole blob is one gzip'd tar; its entries are the TOC's, one for one, TOC last."""
        toc_files = [e for e in self.toc["entries"] if e["type"] != "chunk"]
        by_name = {}
        for e in toc_files:
            by_name.setdefault(e["name"].rstrip("/"), e)
        tar_names = []
        reader = _HashingReader(gzip.GzipFile(fileobj=io.BytesIO(self.blob)))
        with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|") as t:
            for m in t:
                tar_names.append(m.name)
                e = by_name.get(m.name.rstrip("/"))
                if m.name == TOC_NAME or e is None:
                    continue
                self.compare_tar_member(m, e, t)
            while reader.read(1 << 20):  # the end-of-archive blocks tarfile leaves unread
                pass
        if not tar_names or tar_names[-1] != TOC_NAME:
            self.bad(f"the TOC is not the last tar entry (last: {tar_names[-1:]})")
        toc_names = [e["name"].rstrip("/") for e in toc_files]
        if [n.rstrip("/") for n in tar_names[:-1]] != toc_names:
            missing = set(n.rstrip("/") for n in tar_names[:-1]) ^ set(toc_names)
            self.bad(f"TOC entries are not the tar entries in order (differing names: {sorted(missing)[:10]})")
        want_size = self.desc.get("annotations", {}).get(SIZE_ANNOTATION)
        if want_size is not None and int(want_size) != reader.size:
            self.bad(f"{SIZE_ANNOTATION} {want_size} != {reader.size} uncompressed bytes")
        if self.diff_id != "sha256:" + reader.sha.hexdigest():
            self.bad(f"config diff_id {self.diff_id} != sha256 of the uncompressed blob")

    def compare_tar_member(self, m, e, t):
        name = e["name"]
        kind = {tarfile.REGTYPE: "reg", tarfile.AREGTYPE: "reg", tarfile.DIRTYPE: "dir",
                tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
                tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}.get(m.type)
        if kind != e["type"]:
            self.bad(f"{name}: TOC type {e['type']}, tar type {m.type!r}")
        if kind == "dir" and not name.endswith("/"):
            self.bad(f"{name}: directory name without a trailing '/'")
        checks = [("mode", m.mode & 0o7777, e.get("mode", 0) & 0o7777), ("uid", m.uid, e.get("uid", 0)),
                  ("gid", m.gid, e.get("gid", 0)), ("modtime", int(m.mtime),
                                                    rfc3339_seconds(e["modtime"])[0] if "modtime" in e else 0)]
        if kind == "reg":
            checks.append(("size", m.size, e.get("size", 0)))
        if kind in ("symlink", "hardlink"):
            checks.append(("linkName", m.linkname, e.get("linkName")))
        if kind in ("char", "block"):
            checks += [("devMajor", m.devmajor, e.get("devMajor", 0)), ("devMinor", m.devminor, e.get("devMinor", 0))]
        tar_xattrs = {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
                      for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        toc_xattrs = {k: base64.b64decode(v) for k, v in e.get("xattrs", {}).items()}
        checks.append(("xattrs", tar_xattrs, toc_xattrs))
        for what, tar_value, toc_value in checks:
            if tar_value != toc_value:
                self.bad(f"{name}: tar {what} {tar_value!r} != TOC {what} {toc_value!r}")
        if kind == "reg" and m.size > 0:
            h, f = hashlib.sha256(), t.extractfile(m)
            while block := f.read(1 << 20):
                h.update(block)
            if "sha256:" + h.hexdigest() != e.get("digest"):
                self.bad(f"{name}: tar payload does not hash to the TOC digest")


# ---------------------------------------------------------------------------------------------------
# Comparing the two producers' TOCs.

def entry_facts(e):
    """What must agree between producers for one non-chunk entry."""
    facts = {k: e.get(k, 0) for k in ("size", "mode", "uid", "gid", "devMajor", "devMinor")}
    facts.update(type=e["type"], linkName=e.get("linkName"), digest=e.get("digest"),
                 xattrs={k: base64.b64decode(v) for k, v in e.get("xattrs", {}).items()},
                 modtime=rfc3339_seconds(e["modtime"])[0] if "modtime" in e else None)
    return facts


def note(notes, what, example):
    """Records a tolerated difference: `notes` maps what -> [first example, count]."""
    seen = notes.setdefault(what, [example, 0])
    seen[1] += 1


def compare_layers(ours, theirs, notes):
    """Differences between our layer and ctr-remote's (list of strings); tolerated ones go to `notes`."""
    diffs = []
    o_entries = [e for e in ours.toc["entries"] if e["type"] != "chunk"]
    t_entries = [e for e in theirs.toc["entries"] if e["type"] != "chunk"]
    o_by, t_by = {e["name"]: e for e in o_entries}, {e["name"]: e for e in t_entries}
    for name in sorted(set(o_by) - set(t_by)):
        diffs.append(f"{name!r} only in lazyfs' TOC")
    for name in sorted(set(t_by) - set(o_by)):
        diffs.append(f"{name!r} only in ctr-remote's TOC")
    common = [e["name"] for e in t_entries if e["name"] in o_by]
    if [e["name"] for e in o_entries if e["name"] in t_by] != common:
        note(notes, "order", "entry order differs")
    for name in common:
        o, t = o_by[name], t_by[name]
        landmark = name in LANDMARKS
        fo, ft = entry_facts(o), entry_facts(t)
        if landmark and fo["mode"] != ft["mode"]:
            note(notes, "landmark-mode", f"{name} mode {fo['mode']:o} vs {ft['mode']:o}")
            fo["mode"] = ft["mode"]
        for key in fo:
            if fo[key] != ft[key]:
                diffs.append(f"{name!r}: {key} lazyfs {fo[key]!r} vs ctr-remote {ft[key]!r}")
        if "modtime" in o and "modtime" in t and o["modtime"] != t["modtime"]:
            (_, ofrac), (_, tfrac) = rfc3339_seconds(o["modtime"]), rfc3339_seconds(t["modtime"])
            if tfrac == "" and ofrac and fo["modtime"] == ft["modtime"]:
                note(notes, "modtime-fraction", f"{name!r}: {o['modtime']} vs {t['modtime']}")
            elif fo["modtime"] == ft["modtime"]:
                diffs.append(f"{name!r}: modtime spelled {o['modtime']!r} vs {t['modtime']!r}")
        # Which fields are present: both omit zero values; data-location fields must match too.
        ok, tk = set(o), set(t)
        if landmark:
            ok.discard("mode"), tk.discard("mode")
        if ok != tk and not (e_type_reg_last_full(ours, theirs, name, ok ^ tk)):
            diffs.append(f"{name!r}: fields only in lazyfs {sorted(ok - tk)}, only in ctr-remote {sorted(tk - ok)}")
        if list(o) != list(t) and set(o) == set(t):
            note(notes, "json-field-order", f"{name!r}: {list(o)} vs {list(t)}")
    diffs += compare_chunk_layouts(ours, theirs, [n for n in common if t_by[n]["type"] == "reg"], notes)
    return diffs


def e_type_reg_last_full(ours, theirs, name, differing):
    """True if the only differing field of `name`'s reg entry is the tolerated chunkSize of a
    single-chunk file exactly one chunk long (compare_chunk_layouts reports it)."""
    if differing != {"chunkSize"}:
        return False
    o_layout, t_layout = ours.chunk_layout(name), theirs.chunk_layout(name)
    return len(o_layout) == len(t_layout) == 1 and o_layout[0][1] == CHUNK


def compare_chunk_layouts(ours, theirs, names, notes):
    diffs = []
    o_files, t_files = ours.files(), theirs.files()
    for name in names:
        if name not in o_files or name not in t_files or len(t_files[name]) == 0:
            continue
        o_layout, t_layout = ours.chunk_layout(name), theirs.chunk_layout(name)
        if [c[:3] for c in o_layout] != [c[:3] for c in t_layout]:
            diffs.append(f"{name!r}: chunks (chunkOffset, size, chunkDigest) differ: lazyfs "
                         f"{[c[:2] for c in o_layout]} vs ctr-remote {[c[:2] for c in t_layout]}")
            continue
        for k, (oc, tc) in enumerate(zip(o_layout, t_layout)):
            if oc[3] == tc[3]:
                continue
            last = k + 1 == len(o_layout)
            if last and oc[3] is None and tc[3] == oc[1] == CHUNK:
                note(notes, "last-chunk-size", f"{name!r}: chunkSize of the full last chunk omitted by lazyfs, "
                                                f"{CHUNK} by ctr-remote")
            else:
                diffs.append(f"{name!r}: chunk {k} chunkSize lazyfs {oc[3]} vs ctr-remote {tc[3]}")
        # Entry fields of chunk entries (type chunk) present on both sides.
        for k, (oe, te) in enumerate(zip(o_files[name][1:], t_files[name][1:]), start=1):
            ok, tk = set(oe) - {"chunkSize"}, set(te) - {"chunkSize"}
            if ok != tk:
                diffs.append(f"{name!r}: chunk entry {k} fields lazyfs {sorted(oe)} vs ctr-remote {sorted(te)}")
    return diffs


# ---------------------------------------------------------------------------------------------------

class CtrRemoteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        reason = ctr_remote.unavailable_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.classdir = tempfile.mkdtemp(prefix="lazyfs-it-ctr-remote.")
        cls.images = {}
        # "prioritized" exists only as ctr-remote makes it: `lazyfs convert` has no prioritized-files option
        # (its writer's ordering is covered by the unit tests in tests/fs/estargz_test.cc).
        for key, rec, prioritized in (("features", recipes.features(), None), ("chunks", chunks_recipe(), None),
                                      ("prioritized", recipes.features(), PRIORITIZED)):
            layout, tag = ib.build(rec)
            theirs, _ = ctr_remote.convert(layout, tag, prioritized=prioritized)
            if prioritized:
                cls.images[key] = {"layout": layout, "tag": tag, "theirs": theirs, "ours": None}
                continue
            ours = os.path.join(cls.classdir, f"ours-{key}")
            proc = harness.run_lazyfs(["convert", "--quiet", "--chunk-size", str(CHUNK), ib.oci_ref(layout, tag),
                                       f"oci:{ours}:{tag}"], timeout=900)
            if proc.returncode != 0:
                raise AssertionError(f"lazyfs convert of {key} failed:\n{proc.stdout}\n{proc.stderr}")
            cls.images[key] = {"layout": layout, "tag": tag, "theirs": theirs, "ours": ours}
        cls._layers = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.classdir, ignore_errors=True)

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    # -- helpers -----------------------------------------------------------------------------------

    def layers(self, key, side):
        """[Layer] of image `key` made by `side` ("ours" or "theirs"), checked against the spec once."""
        if (key, side) not in self._layers:
            img = self.images[key]
            manifest, config = image_of(img[side], img["tag"])
            diff_ids = config["rootfs"]["diff_ids"]
            self.assertEqual(len(manifest["layers"]), len(diff_ids))
            self._layers[(key, side)] = [Layer(img[side], d, i) for d, i in zip(manifest["layers"], diff_ids)]
        return self._layers[(key, side)]

    def mount_theirs_and_compare(self, key):
        img = self.images[key]
        m = self.mounts.mount(ib.oci_ref(img["theirs"], img["tag"]))
        self.assertTrue(m.ok, m.describe())
        stats = harness.run_lazyfs(["stats", "--json", m.mountpoint], timeout=60)
        self.assertEqual(stats.returncode, 0, stats.stderr)
        layers = json.loads(stats.stdout)["layers"]
        manifest, _ = image_of(img["theirs"], img["tag"])
        self.assertEqual([l["digest"] for l in layers], [d["digest"] for d in manifest["layers"]])
        not_lazy = [l["digest"] for l in layers if not l.get("lazy")]
        self.assertEqual(not_lazy, [], f"lazyfs rejected ctr-remote's TOC of these layers (whole-layer "
                                       f"fallback):\n{m.log()[-4000:]}")
        self.assertNotIn("is not eStargz", m.log())
        reference = harness.reference_rootfs(img["layout"], img["tag"])
        res = treecmp.compare(m.mountpoint, reference)
        for note in res.notes:
            print(f"  treecmp {key}: {note}", file=sys.stderr)
        self.assertTrue(res.equal, f"mount of ctr-remote's {key} image vs umoci unpack of the original:\n"
                                   f"{res.report(100)}\nlog tail:\n{m.log_tail()}")
        self.assertTrue(m.daemon_alive(), "daemon died during the comparison")

    def both(self):
        """Images converted by both producers."""
        return [key for key, img in self.images.items() if img["ours"]]

    def assertFollowsSpec(self, key, side):
        for i, layer in enumerate(self.layers(key, side)):
            with self.subTest(image=key, producer=side, layer=i):
                self.assertEqual(layer.problems, [], f"{side} layer {i} {layer.desc['digest']}")

    def compare(self, key):
        ours, theirs = self.layers(key, "ours"), self.layers(key, "theirs")
        self.assertEqual(len(ours), len(theirs))
        notes, diffs = {}, []
        for i, (o, t) in enumerate(zip(ours, theirs)):
            diffs += [f"layer {i}: {d}" for d in compare_layers(o, t, notes)]
        for what, (example, count) in sorted(notes.items()):
            print(f"  {key}: tolerated {what} x{count}, e.g. {example} ({TOLERATED[what]})", file=sys.stderr)
        self.assertEqual(diffs, [], f"lazyfs convert and ctr-remote disagree on the {key} image")

    # -- (a) ctr-remote's images mount lazily and equal umoci ---------------------------------------

    def test_ctr_remote_features_mounts_lazily_and_equals_umoci(self):
        self.mount_theirs_and_compare("features")

    def test_ctr_remote_chunks_mounts_lazily_and_equals_umoci(self):
        self.mount_theirs_and_compare("chunks")

    def test_ctr_remote_prioritized_mounts_lazily_and_equals_umoci(self):
        self.mount_theirs_and_compare("prioritized")

    def test_ctr_remote_prioritized_layout(self):
        # What the reader must accept: .prefetch.landmark (never .no.prefetch.landmark) in every layer, with
        # the prioritized files that layer has before it and nothing prioritized after it.
        for i, layer in enumerate(self.layers("prioritized", "theirs")):
            with self.subTest(layer=i):
                names = [e["name"] for e in layer.toc["entries"] if e["type"] != "chunk"]
                self.assertIn(".prefetch.landmark", names)
                self.assertNotIn(".no.prefetch.landmark", names)
                cut = names.index(".prefetch.landmark")
                self.assertFalse(set(PRIORITIZED) & set(names[cut + 1:]), names[cut + 1:][:10])
        first = [e["name"] for e in self.layers("prioritized", "theirs")[0].toc["entries"] if e["type"] != "chunk"]
        self.assertEqual(first[:first.index(".prefetch.landmark")],
                         ["etc/", "etc/passwd", "links/", "links/hl-a", "links/hl-b", "data/", recipes.RANDOM_PATH])

    # -- (b) both producers follow the spec ---------------------------------------------------------

    def test_ctr_remote_blobs_follow_spec(self):
        # Guards the checker itself: the independent producer must pass it.
        for key in self.images:
            self.assertFollowsSpec(key, "theirs")

    def test_lazyfs_blobs_follow_spec(self):
        for key in self.both():
            self.assertFollowsSpec(key, "ours")

    # -- (c) the producers agree ------------------------------------------------------------------

    def test_toc_entries_match_ctr_remote_features(self):
        self.compare("features")

    def test_toc_entries_and_chunks_match_ctr_remote_chunks(self):
        self.compare("chunks")
        # The chunks image must really exercise the rules: multi-chunk files with short and full tails.
        layout = self.layers("chunks", "theirs")[0].chunk_layout("c/two-and-a-bit")
        self.assertEqual([c[:2] for c in layout], [(0, CHUNK), (CHUNK, CHUNK), (2 * CHUNK, 12345)])

    def test_footer_matches_ctr_remote(self):
        for key in self.both():
            for i, (o, t) in enumerate(zip(self.layers(key, "ours"), self.layers(key, "theirs"))):
                with self.subTest(image=key, layer=i):
                    self.assertEqual(len(o.footer), FOOTER_SIZE)
                    self.assertEqual(o.footer[:16] + o.footer[32:], t.footer[:16] + t.footer[32:],
                                     f"footers differ beyond the offset: {o.footer.hex()} vs {t.footer.hex()}")

    def test_toc_tar_header_matches_ctr_remote(self):
        for key in self.both():
            for i, (o, t) in enumerate(zip(self.layers(key, "ours"), self.layers(key, "theirs"))):
                with self.subTest(image=key, layer=i):
                    if o.toc_header["mode"] != t.toc_header["mode"]:
                        print(f"  {key} layer {i}: TOC tar header mode {o.toc_header['mode']:o} vs "
                              f"{t.toc_header['mode']:o} (tolerated: {TOLERATED['toc-header-mode']})", file=sys.stderr)
                    self.assertEqual({**o.toc_header, "mode": None}, {**t.toc_header, "mode": None})

    def test_layer_descriptors_match_ctr_remote(self):
        print(f"  tolerated: {TOLERATED['tar-encoding']}; {TOLERATED['compression']}", file=sys.stderr)
        for key in self.both():
            img = self.images[key]
            (om, oc), (tm, tc) = image_of(img["ours"], img["tag"]), image_of(img["theirs"], img["tag"])
            with self.subTest(image=key):
                self.assertEqual(om.get("mediaType"), tm.get("mediaType"))
                self.assertEqual(om["config"]["mediaType"], tm["config"]["mediaType"])
                self.assertEqual(len(om["layers"]), len(tm["layers"]))
                for i, (o, t) in enumerate(zip(om["layers"], tm["layers"])):
                    self.assertEqual(o["mediaType"], t["mediaType"], f"layer {i}")
                    ours = o.get("annotations", {})
                    self.assertEqual(sorted(k for k in ours if not k.startswith(OWN_ANNOTATIONS)),
                                     sorted(t.get("annotations", {})), f"layer {i} annotation keys")
                    # Our own: the TOC offset hint, which must be what the footer says.
                    with open(os.path.join(img["ours"], "blobs", "sha256", o["digest"].split(":", 1)[1]), "rb") as f:
                        f.seek(-51, os.SEEK_END)
                        footer = f.read()
                    at = footer.index(b"STARGZ")
                    self.assertEqual(int(ours.get(TOC_OFFSET_ANNOTATION, "-1")), int(footer[at - 16:at], 16),
                                     f"layer {i} {TOC_OFFSET_ANNOTATION}")
                # Everything in the config but the diff_ids (checked per blob) is the source's.
                strip = lambda c: {k: v for k, v in c.items() if k != "rootfs"}  # noqa: E731
                self.assertEqual(strip(oc), strip(tc))


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
