#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer (cmake-js, into
# build-asan/) and runs test/sanitize/exercise.cjs under it, with node preloading the ASan runtime.
# Any ASan or UBSan error fails the run. Leak detection runs too, but node's own allocations leak
# by design at exit, so only leak reports with a frame in heapstate.node fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
node scripts/build-native.mjs --cmake --out build-asan --CDCMAKE_CXX_FLAGS="$flags" --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
log=$(mktemp -d)/lsan
status=0
for preload in "" /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2; do
  echo "sanitize: exercise under ${preload:-glibc}"
  LD_PRELOAD="$asan $ubsan${preload:+ $preload}" \
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:log_path=$log" \
  LSAN_OPTIONS="exitcode=0:fast_unwind_on_malloc=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
  HEAPSTATE_BINDING="$PWD/build-asan/Release/heapstate.node" HEAPSTATE_EXERCISE_ROUNDS=30 \
    node test/sanitize/exercise.cjs || status=$?
  if [ "$status" -ne 0 ]; then
    echo "sanitize: exercise failed with $status"; cat "$log".* 2>/dev/null | head -80; exit 1
  fi
  if grep -l "heapstate.node" "$log".* > /dev/null 2>&1; then
    echo "sanitize: a leak or error report names heapstate.node:"; grep -B5 -A30 "heapstate.node" "$log".* | head -120; exit 1
  fi
  rm -f "$log".*
done
# The glibc sampler (native/sampler) linked into its stress program with its entry points renamed
# (ASan's runtime serves malloc beneath it): threads that free each other's blocks and exit while
# others allocate, one sample per 4 KiB and then every allocation sampled, each ending in a dump.
echo "sanitize: the glibc sampler's stress program"
gcc -std=gnu11 -DHEAPSTATE_SAMPLER_PREFIX $flags -pthread -rdynamic -o build-asan/sampler-stress \
  native/sampler/sampler.c test/fixtures/native/sampler-stress.c -ldl
for period in 4096 1; do
  dump=$(mktemp -d)/heap
  HEAPSTATE_SAMPLE_BYTES=$period HEAPSTATE_SAMPLER_SLOTS=65536 \
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
    build-asan/sampler-stress "$dump" 4 || { echo "sanitize: the sampler's stress failed (period $period)"; exit 1; }
  head -1 "$dump" | grep -qx "heap_v2/$period" || { echo "sanitize: the sampler's dump is not a heap_v2 profile"; exit 1; }
  rm -rf "$(dirname "$dump")"
done
echo "sanitize: ok"
