#!/usr/bin/env bash
# Builds every plugin in this workspace to WebAssembly and copies the modules to
# plugins/dist/<crate>.wasm.
#
# Picks the first toolchain that exists:
#  1. rustup with the wasm32-wasip1 target (a developer laptop: `rustup target add wasm32-wasip1`);
#  2. Debian's rustc 1.63 with wasm32-wasi (packages rustc, cargo, libstd-rust-dev-wasm32);
#  3. neither: installs the Debian packages (needs root and apt), then uses 2.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dist
# The modules are copied from plugins/target below. A CARGO_TARGET_DIR inherited from the
# caller (say, a shared one for the engine workspace) would send them elsewhere, and mix
# rustc 1.63 artifacts with the caller's.
export CARGO_TARGET_DIR="$PWD/target"

debian_ready() {
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/wasm32-wasi ]
}

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "plugins: building with rustup's wasm32-wasip1" >&2
  target=wasm32-wasip1
  cargo build --release --target "$target"
else
  if ! debian_ready; then
    echo "plugins: installing Debian's rustc + wasm32-wasi std (rustc cargo libstd-rust-dev-wasm32)" >&2
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rustc cargo libstd-rust-dev-wasm32 >/dev/null
  fi
  # A new plugin crate needs a Cargo.lock entry. The modern cargo (rustup's), when there is
  # one, adds it with its MSRV-aware resolver (rust-version 1.63, `fallback`), so the old
  # cargo below can build --locked.
  modern=$(command -v cargo || true)
  if [ -n "$modern" ] && [ "$modern" != /usr/bin/cargo ]; then
    "$modern" metadata --format-version 1 >/dev/null
    locked=--locked
  else
    locked=
  fi
  echo "plugins: building with Debian's $(/usr/bin/rustc --version) for wasm32-wasi" >&2
  target=wasm32-wasi
  RUSTC=/usr/bin/rustc CARGO_UNSTABLE_SPARSE_REGISTRY=true \
    __CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=nightly \
    /usr/bin/cargo build --release --target "$target" $locked
fi

# Test-only plugins (they attack the sandbox) go to dist/test/, out of the demo's way.
mkdir -p dist/test
# Each module appears whole or not at all (copy, then rename): a test or a server reading
# dist/ while this runs never sees half a file.
for wasm in target/"$target"/release/*.wasm; do
  name=$(basename "$wasm" | tr '_' '-')
  case "$name" in
    hostile.wasm) to="dist/test/$name" ;;
    *) to="dist/$name" ;;
  esac
  cp "$wasm" "$to.tmp" && mv -f "$to.tmp" "$to"
done
ls -l dist/*.wasm dist/test/*.wasm >&2
