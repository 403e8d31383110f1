#!/bin/sh
# Test program for ext_authz: the repository name picks the exit code; the JSON request is
# saved in $1/authz-stdin so the test can check it byte for byte.
input=$(cat)
printf '%s' "$input" > "$1/authz-stdin"
case "$input" in
  *'"Name":"allow/'*) exit 0 ;;
  *'"Name":"deny/'*) exit 1 ;;
  *'"Name":"hang/'*) exec sleep 30 ;;
  *) exit 7 ;;
esac
