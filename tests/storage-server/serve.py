"""A static file server standing in for a registry's storage behind distribution's `redirect`
middleware (as S3 or a CDN would be): serves the files under --directory (the registry's
filesystem rootdirectory), records every request's path and headers as a JSON line in --log,
and misbehaves on demand (the word in --mode-file, read per request):

  serve   the file (default)        loop    302 to itself, forever
  big     5 MiB of zeros            wrong   bytes that are not the blob
  signed  307 to the same path with a presigned-style query, which then answers 403

--strip-prefix P serves /P/<file> as /<file> (3.x keeps a path in the middleware's baseurl;
2.8.2 drops it). Binds 127.0.0.1 on a free port and prints "PORT <n>" once listening.
Standard library only.
"""
import argparse
import json
import os
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

SIGNATURE = "X-Amz-Signature=storage-secret-signature"


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, log_path, mode_path, strip_prefix, **kwargs):
        self.log_path = log_path
        self.mode_path = mode_path
        self.strip_prefix = strip_prefix
        super().__init__(*args, **kwargs)

    def translate_path(self, path):
        if self.strip_prefix and path.startswith(self.strip_prefix + "/"):
            path = path[len(self.strip_prefix):]
        return super().translate_path(path)

    def mode(self):
        try:
            with open(self.mode_path) as f:
                return f.read().strip() or "serve"
        except FileNotFoundError:
            return "serve"

    def record(self):
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        with open(self.log_path, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "headers": headers}) + "\n")

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.record()
        mode = self.mode()
        if mode == "loop":
            return self.answer(302, headers=[("Location", self.path)])
        if mode == "big":
            return self.answer(200, b"\0" * (5 * 1024 * 1024))
        if mode == "wrong":
            return self.answer(200, b'{"os":"linux","architecture":"evil"}')
        if mode == "signed":
            if "?" not in self.path:
                return self.answer(307, headers=[("Location", self.path + "?" + SIGNATURE)])
            return self.answer(403, b"<Error><Code>AccessDenied</Code></Error>")
        return super().do_GET()

    def do_HEAD(self):
        self.record()
        return super().do_HEAD()

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--mode-file", required=True)
    parser.add_argument("--strip-prefix", default="")
    args = parser.parse_args()
    prefix = "/" + args.strip_prefix.strip("/") if args.strip_prefix.strip("/") else ""
    handler = partial(
        Handler, directory=args.directory, log_path=args.log, mode_path=args.mode_file, strip_prefix=prefix
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
