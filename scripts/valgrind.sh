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
