#!/usr/bin/env bash
# The main job on the local defaults (README, first command): install, build, make a small Debian image
# (mmdebstrap minbase + python3, as an OCI layout), convert it to eStargz, mount it lazily from the shared
# cache, run a few reads a start-up would do, and show what was fetched against what the image holds.
# Needs root. The image is built once and kept in $LAZYFS_DEMO_DIR (default /var/cache/lazyfs-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build --quiet  # errors still print
lazyfs=$PWD/build/tools/lazyfs

demo=${LAZYFS_DEMO_DIR:-/var/cache/lazyfs-demo}
recipe="mmdebstrap --variant=minbase --include=python3-minimal bookworm"
key=$(echo "$recipe v1" | sha256sum | cut -c1-16)
image=$demo/debian-$key
mkdir -p "$demo"
if [ ! -f "$image/estargz/index.json" ]; then
  echo "== building the demo image ($recipe)"
  tmp=$(mktemp -d "$demo/tmp.XXXXXX")
  $recipe --format=tar "$tmp/rootfs.tar" 2>"$tmp/mmdebstrap.log" || { cat "$tmp/mmdebstrap.log" >&2; exit 1; }
  umoci init --layout "$tmp/plain"
  umoci new --image "$tmp/plain:latest"
  umoci raw add-layer --image "$tmp/plain:latest" "$tmp/rootfs.tar"
  echo "== converting to eStargz"
  "$lazyfs" convert "oci:$tmp/plain:latest" "oci:$tmp/estargz:latest"
  rm -f "$tmp/rootfs.tar"
  rm -rf "$image"
  mv "$tmp" "$image"
fi

mnt=$(mktemp -d /tmp/lazyfs-demo-mnt.XXXXXX)
cache=${LAZYFS_CACHE_DIR:-/var/lib/lazyfs/cache}
cleanup() { "$lazyfs" umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
echo "== mounting oci:$image/estargz:latest at $mnt (cache $cache)"
"$lazyfs" mount --cache-dir "$cache" --log-file /tmp/lazyfs-demo.log "oci:$image/estargz:latest" "$mnt"
echo "== what a start-up reads"
cat "$mnt/etc/os-release" | head -2
ls "$mnt/usr/bin" | wc -l | sed 's/^/files in \/usr\/bin: /'
python_bin=$(ls "$mnt"/usr/bin/python3.* 2>/dev/null | head -1)
[ -n "$python_bin" ] && sha256sum "$python_bin"
echo "== what was fetched"
"$lazyfs" stats "$mnt"
