#!/usr/bin/env bash
# Builds the clip's test rig (tests/rig/README.md): MicroPython's 32-bit unix port with the real
# `bluetooth` module (NimBLE host, HCI over the serial device named by MICROPYBTUART) and littlefs,
# plus the mpy-cross of the same source, into build/rig/. The source is the tarball in
# ../shared/vendor (checked against its SHA256SUMS) or, where that is absent, a pinned clone when
# the network allows. Nothing is copied into the repository. Prints why when it cannot build;
# the rig's tests then skip with that reason (build/rig/UNAVAILABLE).
set -u
cd "$(dirname "$0")/.."
out=build/rig
commit=1c3c201149
tarball=../shared/vendor/micropython-1.29-preview-1c3c201-nimble.tar.xz
stamp="$out/.built-$commit"
[ -f "$stamp" ] && [ -x "$out/micropython" ] && [ -x "$out/mpy-cross" ] && exit 0
mkdir -p "$out"
rm -f "$out/UNAVAILABLE"
fail() { echo "rig: $*" | tee "$out/UNAVAILABLE" >&2; exit 0; }

echo 'int main(void){return 0;}' > "$out/m32.c"
gcc -m32 "$out/m32.c" -o "$out/m32" 2>/dev/null || fail "gcc cannot build 32-bit programs (Debian: apt-get install gcc-multilib)"

src="$out/src"
rm -rf "$src"
mkdir -p "$src"
if [ -f "$tarball" ]; then
  (cd "$(dirname "$tarball")" && sha256sum --quiet -c SHA256SUMS) || fail "$tarball does not match its SHA256SUMS"
  tar xJf "$tarball" -C "$src" || fail "cannot unpack $tarball"
elif git clone -q https://github.com/micropython/micropython "$src/micropython" 2>/dev/null; then
  (cd "$src/micropython" && git checkout -q "$commit" && git submodule -q update --init lib/mynewt-nimble lib/littlefs) \
    || fail "cannot check out MicroPython $commit with its NimBLE"
else
  fail "no $tarball and no network to clone MicroPython $commit"
fi

mp="$src/micropython"
log="$out/build.log"
echo "rig: building MicroPython $commit (32-bit unix port, NimBLE, littlefs) and its mpy-cross; log: $log"
make -C "$mp/ports/unix" -j2 BUILD=build-32 CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32 \
  MICROPY_PY_BLUETOOTH=1 MICROPY_BLUETOOTH_NIMBLE=1 \
  MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 FROZEN_MANIFEST= >"$log" 2>&1 \
  || fail "the MicroPython build failed (see $log)"
make -C "$mp/mpy-cross" -j2 >>"$log" 2>&1 || fail "the mpy-cross build failed (see $log)"
cp "$mp/ports/unix/build-32/micropython" "$out/micropython"
cp "$mp/mpy-cross/build/mpy-cross" "$out/mpy-cross"
"$out/micropython" -c "import sys, bluetooth, vfs; assert sys.maxsize == 2**31 - 1 and hasattr(vfs, 'VfsLfs2')" \
  || fail "the built interpreter is not 32-bit with bluetooth and littlefs"
rm -rf "$src"
touch "$stamp"
echo "rig: ready in $out"
