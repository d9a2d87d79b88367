#!/usr/bin/env bash
# valgrind memcheck over a collect() loop (test/sanitize/exercise.cjs, without workers' endless
# reader). Node itself makes valgrind report things (its JIT, its own allocator use); the run fails
# only on an error whose stack has a frame in heapstate.node.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)/memcheck.xml
HEAPSTATE_BINDING="$PWD/build/Release/heapstate.node" HEAPSTATE_EXERCISE_ROUNDS=${HEAPSTATE_EXERCISE_ROUNDS:-10} \
  valgrind --tool=memcheck --error-exitcode=0 --xml=yes --xml-file="$out" --trace-children=no \
  node --jitless test/sanitize/exercise.cjs
errors=$(grep -c "<error>" "$out" || true)
ours=$(awk '/<error>/{e=""} {e=e $0 "\n"} /<\/error>/{ if (e ~ /heapstate\.node/) n++ } END {print n+0}' "$out")
echo "valgrind: $errors error(s) in all, $ours with a frame in heapstate.node"
if [ "$ours" -ne 0 ]; then
  awk '/<error>/{e=""} {e=e $0 "\n"} /<\/error>/{ if (e ~ /heapstate\.node/) print e }' "$out" | head -100
  exit 1
fi

# The glibc sampler (native/sampler) preloaded into its stress program: threads, forks and every
# allocation entry point, under memcheck. valgrind replaces malloc in libc (the sampler passes its
# calls there) and, by default, in any other object that defines it: nouserintercepts keeps the
# sampler's own functions running, so memcheck checks them.
dump=$(mktemp -d)/heap
HEAPSTATE_SAMPLE_BYTES=4096 HEAPSTATE_SAMPLER_SLOTS=65536 LD_PRELOAD="$PWD/build/Release/libheapstate-sampler.so" \
  valgrind --tool=memcheck --error-exitcode=1 --quiet --soname-synonyms=somalloc=nouserintercepts \
  test/fixtures/native/build/sampler-stress "$dump" 2 || { echo "valgrind: the sampler's stress failed"; exit 1; }
samples=$(sed -n 's/^  heapstate-sampler: samples \([0-9]*\) dropped 0$/\1/p' "$dump")
if [ -z "$samples" ] || [ "$samples" -lt 1000 ]; then
  echo "valgrind: the sampler took ${samples:-no} samples under memcheck (its functions did not run, or dropped samples)"; exit 1
fi
rm -rf "$(dirname "$dump")"
echo "valgrind: the sampler's stress program: no error, $samples samples"
