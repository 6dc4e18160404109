#!/usr/bin/env bash
# The main job on the local defaults (README, first command): install, build, make a small Debian image
# (mmdebstrap minbase + python3, as an OCI layout), convert it to eStargz, mount it lazily from the shared
# cache, run a few reads a start-up would do, and show what was fetched against what the image holds.
# Needs root (as another user it re-runs itself through sudo: tools/require-root.sh). The image is built
# once and kept in $LAZYFS_DEMO_DIR (default /var/cache/lazyfs-demo). Each step prints how long it took,
# and the end sums them up.
set -euo pipefail
source "$(dirname "$0")/../tools/require-root.sh" "$@"
cd "$(dirname "$0")/.."

step_name="" step_start=0 step_times=()
end_step() {  # prints the running step's time (whole seconds, bash's SECONDS) and keeps it for the summary
  [ -n "$step_name" ] || return 0
  local took=$((SECONDS - step_start))
  echo "== $step_name: done in $took s"
  step_times+=("$(printf '%5d s  %s' "$took" "$step_name")")
  step_name=""
}
step() {  # step NAME [DETAIL]: ends the running step and starts NAME (DETAIL is printed, not summed up)
  end_step
  step_name=$1 step_start=$SECONDS
  echo "== $1${2:+ $2}"
}

step "installing dependencies (tools/install-deps.sh)"
bash tools/install-deps.sh
step "building lazyfs (meson, ninja)"
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build --quiet tools/lazyfs tools/lazyfs-core  # the demo needs the tool, not the tests; errors still print
lazyfs=$PWD/build/tools/lazyfs

demo=${LAZYFS_DEMO_DIR:-/var/cache/lazyfs-demo}
recipe="mmdebstrap --variant=minbase --include=python3-minimal bookworm"
key=$(echo "$recipe v1" | sha256sum | cut -c1-16)
image=$demo/debian-$key
mkdir -p "$demo"
if [ ! -f "$image/estargz/index.json" ]; then
  step "building the demo image" "($recipe)"
  tmp=$(mktemp -d "$demo/tmp.XXXXXX")
  $recipe --format=tar "$tmp/rootfs.tar" 2>"$tmp/mmdebstrap.log" || { cat "$tmp/mmdebstrap.log" >&2; exit 1; }
  umoci init --layout "$tmp/plain"
  umoci new --image "$tmp/plain:latest"
  umoci raw add-layer --image "$tmp/plain:latest" "$tmp/rootfs.tar"
  step "converting to eStargz"
  "$lazyfs" convert "oci:$tmp/plain:latest" "oci:$tmp/estargz:latest"
  rm -f "$tmp/rootfs.tar"
  rm -rf "$image"
  mv "$tmp" "$image"
fi

mnt=$(mktemp -d /tmp/lazyfs-demo-mnt.XXXXXX)
cache=${LAZYFS_CACHE_DIR:-/var/lib/lazyfs/cache}
cleanup() { "$lazyfs" umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
step "mounting" "oci:$image/estargz:latest at $mnt (cache $cache)"
"$lazyfs" mount --cache-dir "$cache" --log-file /tmp/lazyfs-demo.log "oci:$image/estargz:latest" "$mnt"
step "what a start-up reads"
cat "$mnt/etc/os-release" | head -2
ls "$mnt/usr/bin" | wc -l | sed 's/^/files in \/usr\/bin: /'
python_bin=$(ls "$mnt"/usr/bin/python3.* 2>/dev/null | head -1)
[ -n "$python_bin" ] && sha256sum "$python_bin"
step "what was fetched"
"$lazyfs" stats "$mnt"
end_step
echo "== time per step"
printf '%s\n' "${step_times[@]}"
printf '%5d s  total\n' "$SECONDS"
