#!/usr/bin/env bash
# Restore an archive made by backup.sh into an empty (or new) directory and verify every
# file against the checksum listing. Exit 1 if anything is missing, extra or different.
#
#   deploy/restore.sh backups/registry-2026-01-01.tar.gz /var/lib/docker/volumes/deploy_registry-data/_data
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ARCHIVE.tar.gz TARGET_DIR" >&2
  exit 2
fi
archive=$1
target=$2
listing="$archive.sha256"
[[ -f $archive ]] || { echo "error: $archive not found" >&2; exit 1; }
[[ -f $listing ]] || { echo "error: checksum listing $listing not found" >&2; exit 1; }
mkdir -p "$target"
if [[ -n $(ls -A "$target") ]]; then
  echo "error: $target is not empty; restore into an empty directory" >&2
  exit 1
fi
listing=$(cd "$(dirname "$listing")" && pwd)/$(basename "$listing")

tar -C "$target" --numeric-owner -xzf "$archive"
cd "$target"
if ! sha256sum --quiet --strict -c "$listing"; then
  echo "error: restored files do not match $listing" >&2
  exit 1
fi
expected=$(wc -l < "$listing")
actual=$(find . -type f | wc -l)
if [[ $expected -ne $actual ]]; then
  echo "error: $actual files restored but the listing has $expected" >&2
  exit 1
fi
echo "restored $actual files into $target; all checksums match"
