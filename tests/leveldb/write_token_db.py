#!/usr/bin/python3
"""Writes a docker_auth level_token_db (a LevelDB directory) for the tests, with Debian's
python3-plyvel (libleveldb, snappy-compressed tables), the same on-disk format goleveldb
writes for docker_auth.

Usage: write_token_db.py DIR < records.json
records.json: {"<account>": <docker_auth TokenDBValue as JSON> | null (delete), ...}, or
{"put": {...}, "compacted": {...}} where "compacted" records are written first and
compacted into table files (.ldb, snappy blocks), "put" records after, left in the log.
Run with /usr/bin/python3: the python3 on PATH may not be Debian's.
"""
import json
import sys

import plyvel


def write(db, records):
    for account, value in records.items():
        key = ("t:" + account).encode()
        if value is None:
            db.delete(key)
        else:
            db.put(key, json.dumps(value, separators=(",", ":")).encode(), sync=True)


def main():
    path = sys.argv[1]
    spec = json.load(sys.stdin)
    db = plyvel.DB(path, create_if_missing=True, compression="snappy")
    if "compacted" in spec or "put" in spec:
        write(db, spec.get("compacted", {}))
        # Padding records make blocks snappy actually shrinks (it keeps a block raw
        # when compression saves less than 1/8).
        for i in range(200):
            db.put(b"padding:%04d" % i, b"x" * 100)
        db.compact_range()
        write(db, spec.get("put", {}))
    else:
        write(db, spec)
    db.close()


if __name__ == "__main__":
    main()
