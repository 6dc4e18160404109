#!/usr/bin/env python3
"""Real container images built from Debian packages, for `lazyfs run` tests and HelloBench.

Every image is two layers on one shared base, the way real images share a distribution base:

  layer 1  `mmdebstrap --variant=minbase bookworm`, the same blob in every image (so its chunks are
           fetched and cached once for all of them);
  layer 2  what `mmdebstrap --variant=minbase --include=PKGS bookworm` adds or changes relative to the
           base: files that differ (content or metadata), the parent directories they need, and `.wh.`
           whiteouts for paths the bigger install removed. Hardlink groups travel whole.

The image config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts) comes from the caller. The plain
image is then converted to eStargz with `lazyfs convert` when a lazyfs binary is given.

API (Python stdlib only):

    layout, tag = build_image("python", ["python3-minimal"], {"Cmd": ["python3"]}, lazyfs=LAZYFS)
    ref = f"oci:{layout}:{tag}"

Everything is cached under $LAZYFS_TEST_CACHE (default /var/cache/lazyfs-tests), keyed by the recipe
(packages, config, suite, builder version): `debian-base/` holds the base tar and its gzip'd layer,
`debian-trees/` each package set's tar, `debian-images/` the OCI layouts. Builds go to a temp dir that is
renamed into place, so concurrent builders never see half an image. mmdebstrap runs with a fixed
SOURCE_DATE_EPOCH so unchanged files compare equal between the two trees.

Needs root (mmdebstrap's root mode) and network access to a Debian mirror on the first build only.

CLI:  python3 debian_image.py build NAME PKG[,PKG...] [--lazyfs PATH] [--cmd CMD...]
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagebuilder  # noqa: E402

# Bump when the bytes built for an unchanged recipe change; part of every cache key here.
DEBIAN_IMAGE_VERSION = 1
SUITE = "bookworm"
SOURCE_DATE_EPOCH = "1600000000"
MMDEBSTRAP_TIMEOUT = 1800
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def _key(obj):
    return hashlib.sha256(imagebuilder.canonical_json({"v": DEBIAN_IMAGE_VERSION, **obj})).hexdigest()


def _mmdebstrap(packages, out_tar):
    """`mmdebstrap --variant=minbase [--include=PKGS] --format=tar SUITE out_tar`."""
    cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet"]
    if packages:
        cmd.append("--include=" + ",".join(packages))
    cmd += [SUITE, out_tar]
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                          env=env, timeout=MMDEBSTRAP_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def debian_tree(packages):
    """The cached tar of `mmdebstrap --variant=minbase --include=PACKAGES SUITE`; [] is the base."""
    packages = sorted(set(packages))
    key = _key({"suite": SUITE, "packages": packages})
    root = imagebuilder.cached_dir("debian-trees", key, lambda tmp: _mmdebstrap(packages, os.path.join(tmp, "rootfs.tar")))
    return os.path.join(root, "rootfs.tar")


def _write_layer(members_and_sources, path):
    """Write a tar+gzip layer from (TarInfo, source TarFile or None); returns diff_id."""
    with open(path, "wb") as out:
        gz = imagebuilder.ParallelGzipWriter(out, 6)
        hashing = imagebuilder._HashingWriter(gz)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          bufsize=1 << 20, copybufsize=1 << 20) as tar:
            for info, source in members_and_sources:
                stream = source.extractfile(info) if source is not None and info.isreg() else None
                tar.addfile(info, stream)
        gz.finish()
    return "sha256:" + hashing.digest.hexdigest()


def base_layer():
    """The shared base layer, cached: (blob path, diff_id, size)."""
    tree = debian_tree([])

    def make(tmp):
        with tarfile.open(tree, "r:") as src:
            diff_id = _write_layer(((m, src) for m in src), os.path.join(tmp, "layer.tar.gz"))
        with open(os.path.join(tmp, "diff_id"), "w") as f:
            f.write(diff_id)

    root = imagebuilder.cached_dir("debian-base", _key({"suite": SUITE, "tree": tree}), make)
    with open(os.path.join(root, "diff_id")) as f:
        diff_id = f.read().strip()
    blob = os.path.join(root, "layer.tar.gz")
    return blob, diff_id, os.path.getsize(blob)


def _norm(name):
    """Tar member name without a leading "./" or "/" and without a trailing "/"; the root is ""."""
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/").rstrip("/")
    return "" if name == "." else name


def _index(tar):
    """name -> TarInfo (names normalised without ./ and trailing /)."""
    return {_norm(m.name): m for m in tar.getmembers()}


def _content_digest(tar, member):
    h = hashlib.sha256()
    f = tar.extractfile(member)
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _same(base_tar, base, app_tar, app):
    """Whether `app` equals `base` in type, metadata and content (mtimes of directories are ignored:
    they change whenever a file is added below, and the union keeps the upper directory anyway)."""
    if base.type != app.type or base.mode != app.mode or base.uid != app.uid or base.gid != app.gid:
        return False
    if {k: v for k, v in base.pax_headers.items() if k.startswith("SCHILY.xattr.")} != \
            {k: v for k, v in app.pax_headers.items() if k.startswith("SCHILY.xattr.")}:
        return False
    if app.isdir():
        return True
    if base.mtime != app.mtime:
        return False
    if app.issym() or app.islnk():
        return _norm(base.linkname) == _norm(app.linkname)
    if app.ischr() or app.isblk():
        return (base.devmajor, base.devminor) == (app.devmajor, app.devminor)
    if app.isreg():
        return base.size == app.size and _content_digest(base_tar, base) == _content_digest(app_tar, app)
    return True


def diff_layer(base_path, app_path, out_path):
    """Write the layer that turns tree `base_path` into tree `app_path` (both plain tars); returns
    diff_id."""
    with tarfile.open(base_path, "r:") as base_tar, tarfile.open(app_path, "r:") as app_tar:
        base, app = _index(base_tar), _index(app_tar)
        changed = {name for name, m in app.items() if name not in base or not _same(base_tar, base[name], app_tar, m)}
        # A hardlink group is written whole: a link whose target is absent from the layer would dangle.
        groups = {}
        for name, m in app.items():
            if m.islnk():
                groups.setdefault(_norm(m.linkname), set()).add(name)
        for target, links in groups.items():
            if target in changed or links & changed:
                changed |= links | {target}
        # Parents of every changed path, so the layer carries their real metadata.
        for name in list(changed):
            parent = os.path.dirname(name)
            while parent and parent not in changed:
                changed.add(parent)
                parent = os.path.dirname(parent)
        changed.discard("")
        entries = [(m, app_tar) for m in app_tar.getmembers() if _norm(m.name) in changed]
        # Whiteouts for the topmost removed paths.
        for name in sorted(n for n in base if n and n not in app):
            parent = os.path.dirname(name)
            if parent and parent not in app:
                continue  # the removed parent's whiteout covers it
            wh = tarfile.TarInfo(os.path.join(parent, ".wh." + os.path.basename(name)))
            wh.mode, wh.mtime = 0o644, int(SOURCE_DATE_EPOCH)
            entries.append((wh, None))
        return _write_layer(entries, out_path)


def _image_config(config, diff_ids):
    cfg = {"Env": list(config.get("Env", DEFAULT_ENV))}
    for field in ("Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Labels", "StopSignal"):
        if field in config:
            cfg[field] = config[field]
    return {
        "architecture": "amd64", "os": "linux", "created": "2020-09-13T12:26:40Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": f"mmdebstrap --variant=minbase {SUITE}"},
                    {"created_by": "lazyfs debian_image package layer"}][:len(diff_ids)],
    }


def _write_plain(layout, tag, packages, config):
    imagebuilder.init_layout(layout)
    blob, base_diff_id, _ = base_layer()
    tmp = os.path.join(layout, "base.tmp")
    shutil.copyfile(blob, tmp)
    digest, size = imagebuilder.put_blob_file(layout, tmp)
    descs = [{"mediaType": imagebuilder.MEDIA_LAYER["gzip"], "digest": digest, "size": size}]
    diff_ids = [base_diff_id]
    if packages:
        tmp = os.path.join(layout, "app.tmp")
        diff_ids.append(diff_layer(debian_tree([]), debian_tree(packages), tmp))
        digest, size = imagebuilder.put_blob_file(layout, tmp)
        descs.append({"mediaType": imagebuilder.MEDIA_LAYER["gzip"], "digest": digest, "size": size})
    cdigest, csize = imagebuilder.put_blob_bytes(layout, imagebuilder.canonical_json(_image_config(config, diff_ids)))
    manifest = {"schemaVersion": 2, "mediaType": imagebuilder.MEDIA_MANIFEST,
                "config": {"mediaType": imagebuilder.MEDIA_CONFIG, "digest": cdigest, "size": csize},
                "layers": descs}
    mdigest, msize = imagebuilder.put_blob_bytes(layout, imagebuilder.canonical_json(manifest))
    imagebuilder.write_index(layout, [{"mediaType": imagebuilder.MEDIA_MANIFEST, "digest": mdigest,
                                       "size": msize, "annotations": {imagebuilder.REF_NAME: tag}}])


# Bumped when `lazyfs convert` output changes (2: the dev.lazyfs.estargz.toc-offset annotation).
CONVERT_FORMAT = 2


def build_image(name, packages, config=None, lazyfs=None):
    """Build (or reuse) the image `name` = minbase + `packages` with image `config` (a dict of OCI
    config fields). Returns (layout_dir, tag): the eStargz layout made by `lazyfs convert` when `lazyfs`
    (path to the binary) is given, else the plain tar+gzip layout. Raises RuntimeError on failure."""
    config = dict(config or {})
    packages = sorted(set(packages))
    tag = name
    recipe = {"name": name, "suite": SUITE, "packages": packages, "config": config}
    plain_root = imagebuilder.cached_dir("debian-images", _key({"plain": recipe}),
                                         lambda tmp: _write_plain(os.path.join(tmp, "oci"), tag, packages, config))
    plain = os.path.join(plain_root, "oci")
    if not lazyfs:
        return plain, tag

    def convert(tmp):
        out = os.path.join(tmp, "oci")
        proc = subprocess.run([lazyfs, "convert", f"oci:{plain}:{tag}", f"oci:{out}:{tag}"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=MMDEBSTRAP_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"lazyfs convert {plain} failed: {proc.stderr.strip()}")

    # Keyed by the plain image's manifest too, so a rebuilt plain image never pairs with an old conversion,
    # and by what `lazyfs convert` writes (CONVERT_FORMAT), so a conversion predating a change is redone.
    with open(os.path.join(plain, "index.json")) as f:
        plain_manifest = json.load(f)["manifests"][0]["digest"]
    key = {"estargz": recipe, "plain_manifest": plain_manifest, "convert_format": CONVERT_FORMAT}
    root = imagebuilder.cached_dir("debian-images", _key(key), convert)
    return os.path.join(root, "oci"), tag


def with_layer(layout, tag, entries, out_layout):
    """A copy of image `layout:tag` with one more plain tar+gzip layer of imagebuilder `entries` on top,
    written to the new directory `out_layout` (same tag; blobs hard-linked). For tests that need a real
    image with a few hostile files in it."""
    imagebuilder.init_layout(out_layout)
    src_blobs = os.path.join(layout, "blobs", "sha256")
    for name in os.listdir(src_blobs):
        os.link(os.path.join(src_blobs, name), os.path.join(out_layout, "blobs", "sha256", name))

    def blob(digest):
        with open(os.path.join(src_blobs, digest.split(":", 1)[1]), "rb") as f:
            return json.load(f)
    with open(os.path.join(layout, "index.json")) as f:
        desc = next(d for d in json.load(f)["manifests"] if d["annotations"][imagebuilder.REF_NAME] == tag)
    manifest = blob(desc["digest"])
    config = blob(manifest["config"]["digest"])
    tmp = os.path.join(out_layout, "extra.tmp")
    diff_id, media_type = imagebuilder.write_layer(imagebuilder.layer(entries), tmp)
    digest, size = imagebuilder.put_blob_file(out_layout, tmp)
    manifest["layers"].append({"mediaType": media_type, "digest": digest, "size": size})
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created_by": "lazyfs test layer"})
    cdigest, csize = imagebuilder.put_blob_bytes(out_layout, imagebuilder.canonical_json(config))
    manifest["config"] = dict(manifest["config"], digest=cdigest, size=csize)
    mdigest, msize = imagebuilder.put_blob_bytes(out_layout, imagebuilder.canonical_json(manifest))
    imagebuilder.write_index(out_layout, [dict(desc, digest=mdigest, size=msize)])
    return out_layout, tag


def main(argv):
    if len(argv) < 3 or argv[0] != "build":
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    name, packages = argv[1], [p for p in argv[2].split(",") if p]
    lazyfs, config, rest = None, {}, argv[3:]
    while rest:
        if rest[0] == "--lazyfs" and len(rest) > 1:
            lazyfs, rest = rest[1], rest[2:]
        elif rest[0] == "--cmd":
            config["Cmd"], rest = rest[1:], []
        else:
            print(f"unknown argument {rest[0]}", file=sys.stderr)
            return 2
    layout, tag = build_image(name, packages, config, lazyfs=lazyfs)
    print(f"oci:{layout}:{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
