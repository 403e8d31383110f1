#!/bin/sh
# Sample ext_auth program for registry-auth (and docker_auth): stdin is
# "<account> <password>" (one space, no newline). Exit 0 allows (stdout may carry
# {"labels": {...}}), 1 denies, 2 means "not my user: ask the next backend".
# Users come from a file of "name:password:group" lines; use a real password store in
# production.
users=${1:-/etc/registry-auth/users.txt}
input=$(cat)
account=${input%% *}
password=${input#* }
line=$(grep -F -- "$account:" "$users" | grep -- "^$account:" | head -n 1)
[ -n "$line" ] || exit 2
[ "$(echo "$line" | cut -d: -f2)" = "$password" ] || exit 1
printf '{"labels": {"group": ["%s"]}}' "$(echo "$line" | cut -d: -f3)"
