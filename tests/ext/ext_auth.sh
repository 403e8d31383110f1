#!/bin/sh
# Test program for ext_auth: the account name picks the behaviour, so one script covers
# every exit code. $1 is a directory where it leaves evidence (pid, stdin copy, overlaps).
input=$(cat)
account=${input%% *}
password=${input#* }
dir=$1
printf '%s' "$input" > "$dir/stdin-$account"
case "$account" in
  alice)
    # Allowed only with the right password (which contains spaces): proves stdin framing.
    [ "$password" = "open sesame" ] || exit 1
    printf '{"labels": {"group": ["devs", "qa"]}, "ignored": true}'
    ;;
  plain) exit 0 ;;
  deny) exit 1 ;;
  nomatch) exit 2 ;;
  code3) exit 3 ;;
  badjson) echo "welcome!" ;;
  badlabels) printf '{"labels": {"group": "devs"}}' ;;
  noisy) echo "diagnostic line from the hook" >&2 ;;
  hang)
    echo $$ > "$dir/hang.pid"
    sleep 30 &
    echo $! > "$dir/hang-child.pid"
    wait
    ;;
  flood) exec yes '{"labels": {"x": ["y"]}}' ;;
  slow)
    # Records overlapping runs: with max_concurrency 1 there must be none.
    if ! mkdir "$dir/running" 2>/dev/null; then touch "$dir/overlap"; fi
    sleep 0.3
    rmdir "$dir/running" 2>/dev/null
    exit 0
    ;;
  *) exit 2 ;;
esac
