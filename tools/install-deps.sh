#!/usr/bin/env bash
# Installs what lazyfs needs to build, test and demo, from Debian 12's apt repositories only.
# Idempotent and quiet when everything is already there; needs root.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config meson ninja-build
  libfuse3-dev liblmdb-dev libxxhash-dev libssl-dev libcurl4-openssl-dev
  nlohmann-json3-dev libarchive-dev libzstd-dev zlib1g-dev libxml2-dev libcli11-dev libfmt-dev doctest-dev
  # run
  fuse3 ca-certificates tini  # tini: PID 1 of `lazyfs run` containers
  # tests, demo and benchmarks: real tools, no fakes
  python3 umoci skopeo stargz-snapshotter containerd docker-registry nginx-light crun mmdebstrap
  attr lmdb-utils openssl apache2-utils zstd util-linux iproute2 procps psmisc
  python3-matplotlib  # HelloBench plots (util-linux: fincore, iproute2: netns + tc tbf)
  python3-pip  # the reference resolver the pkg tests and benchmark compare with
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "lazyfs: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts nginx on install; our tests start their own instances on loopback ports.
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then systemctl stop nginx || true; fi
