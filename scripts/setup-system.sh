#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the tests need, when some are missing: as root with apt-get,
# otherwise with sudo when it needs no password; else it prints the command to run and fails.
# `npm test` runs it first, and so does .ci/run. Nothing is installed when all are present.
#
# What for: the allocators the tests preload, the static jemalloc for the linked-but-unused
# fixture, the lint and symbol tools, what the CLI tests drive it with (setpriv, script, tmux), the
# browser the /debug/memory page is tested in; procps has pmap, a peer in the benchmarks;
# musl-tools builds the musl program that heapstate's C-library detection is tested on; the arm64
# cross compiler builds the linux-arm64 prebuild, which qemu-user runs in Node for arm64; Prometheus
# (the server and promtool) and the Python client's parsers are the oracles of the metrics tests.
# strace shows which procfs files show-host opens (it must not read smaps outside --deep).
set -euo pipefail

packages=(libjemalloc2 libjemalloc-dev libtcmalloc-minimal4 libgoogle-perftools4 libmimalloc2.0 clang-format binutils g++ make python3
  util-linux bsdutils tmux chromium procps valgrind musl-tools
  g++-aarch64-linux-gnu qemu-user prometheus python3-prometheus-client strace)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup-system: this is not a Debian or Ubuntu system; install the equivalents of: ${packages[*]}" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup-system: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup-system: these packages are missing and this user cannot install them; as root, run:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
