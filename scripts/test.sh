#!/usr/bin/env bash
# The full check: real dependencies, formatting, lints, then every test
# target (unit tests and the integration binary tests/it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh

echo "== cargo fmt"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?

# One line per test binary, then the totals as "N passed, N failed".
echo "== cargo test summary"
awk '
  /^ *Running / {
    target = $0
    sub(/^ *Running /, "", target)
    sub(/ \(.*$/, "", target)
  }
  /^test result:/ {
    passed = failed = ignored = 0
    for (i = 1; i <= NF; i++) {
      word = $(i + 1)
      sub(/[;,]$/, "", word)
      if (word == "passed") passed = $i
      if (word == "failed") failed = $i
      if (word == "ignored") ignored = $i
    }
    printf "  %-40s %d passed, %d failed, %d ignored\n", target, passed, failed, ignored
    total_passed += passed; total_failed += failed; total_ignored += ignored
  }
  END {
    printf "summary: %d passed, %d failed, %d skipped\n", total_passed, total_failed, total_ignored
  }
' "$log"
exit "$status"
