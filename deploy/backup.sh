#!/usr/bin/env bash
# Back up a directory (the registry's data volume, or registry-auth's config and ssl/) as
# a tar.gz plus a checksum listing of every file, which restore.sh verifies.
#
#   deploy/backup.sh backups/registry-$(date +%F).tar.gz /var/lib/docker/volumes/deploy_registry-data/_data
#   deploy/backup.sh backups/auth-$(date +%F).tar.gz /etc/registry-auth
#
# The guide's container variant works the same way with the volume mounted:
#   docker run --rm -v deploy_registry-data:/data:ro -v "$PWD:/work" -w /work debian:bookworm-slim \
#     deploy/backup.sh backups/registry.tar.gz /data
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ARCHIVE.tar.gz SOURCE_DIR" >&2
  exit 2
fi
archive=$1
source_dir=$2
[[ -d $source_dir ]] || { echo "error: $source_dir is not a directory" >&2; exit 1; }
[[ -e $archive ]] && { echo "error: $archive exists; choose another name" >&2; exit 1; }
mkdir -p "$(dirname "$archive")"

listing="$archive.sha256"
# Written beside the archive first, renamed at the end: a failed run leaves no half backup.
(cd "$source_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) > "$listing.part"
tar -C "$source_dir" --numeric-owner -czf "$archive.part" .
mv "$archive.part" "$archive"
mv "$listing.part" "$listing"
echo "backed up $(wc -l < "$listing") files from $source_dir to $archive (checksums in $listing)"
