#!/usr/bin/env python3
"""Denial-of-service figures for issue 17, measured the same way on any build:

  1. bcrypt flood: 200 unknown-account logins, each connection closed right after sending,
     then one real login (cost 10, cache off): its latency and the server CPU the flood
     cost. Then 200 unknown-account logins from one client IP that stay connected, and a
     login from another IP meanwhile: its latency, and the flood's statuses.
  2. body flood: 15,000 connections declaring Content-Length 65000 and sending 64,000
     bytes; server RSS at idle, its peak, once every connection has sent its bytes, and
     after they are all closed (+3 s, +10 s and +60 s; anonymous and file-backed apart).
  10. timing: median of 5 logins each for a cost-13 user's wrong password, an unknown
     account, and a user whose stored password is not a bcrypt hash (most users cost 5).

usage: bench/dos.py BINARY [sections...]   (sections: 1 2 10; default all)
       BODY_CONNECTIONS=N (section 2, default 15000), MAX_CONNECTIONS=N (server.max_connections)
"""
import asyncio
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])
SECTIONS = sys.argv[2:] or ["1", "2", "10"]
WORK = tempfile.mkdtemp(prefix="dos-bench-")
TICK = os.sysconf("SC_CLK_TCK")
# MAX_CONNECTIONS=N sets server.max_connections (default: the server's own default).
MAX_CONNECTIONS = os.environ.get("MAX_CONNECTIONS")


def sh(*args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, check=True, text=True).stdout.strip()


def hash_password(password, cost):
    return sh(BIN, "hash-password", "--cost", str(cost), stdin=password + "\n").splitlines()[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
   "-keyout", f"{WORK}/ec.key", "-out", f"{WORK}/ec.pem", "-days", "30", "-subj", "/CN=bench")


class Server:
    def __init__(self, users, extra=""):
        self.port = free_port()
        self.addr = ("127.0.0.1", self.port)
        config = f"{WORK}/config-{self.port}.yml"
        with open(config, "w") as f:
            f.write(f'server:\n  addr: "127.0.0.1:{self.port}"\n  real_ip_header: X-Forwarded-For\n'
                    + (f'  max_connections: {MAX_CONNECTIONS}\n' if MAX_CONNECTIONS else '')
                    + f'token:\n  issuer: "bench"\n  expiration: 900\n'
                    f'  certificate: "{WORK}/ec.pem"\n  key: "{WORK}/ec.key"\n'
                    f'credential_cache:\n  ttl: 0\nusers:\n')
            for name, hashed in users.items():
                f.write(f'  "{name}":\n    password: "{hashed}"\n')
            f.write('acl:\n  - match: {account: "/.+/"}\n    actions: ["pull"]\n' + extra)
        self.log = open(f"{WORK}/server-{self.port}.log", "w")
        self.proc = subprocess.Popen([BIN, "serve", "--log-level", "warn", config], stderr=self.log)
        for _ in range(400):
            try:
                if status(self.request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("server did not start; see " + self.log.name)

    def request(self, raw, timeout=120):
        with socket.create_connection(self.addr, timeout=timeout) as s:
            s.sendall(raw.encode())
            return read_all(s)

    def login(self, user, password, ip="10.9.9.9"):
        started = time.monotonic()
        answer = self.request(login_request(user, password, ip))
        return status(answer), (time.monotonic() - started) * 1000

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self, key="VmRSS"):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def read_all(s):
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("latin-1")


def status(answer):
    parts = answer.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def login_request(user, password, ip):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (f"GET /auth?service=registry&scope=repository:a/b:pull HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Basic {auth}\r\nX-Forwarded-For: {ip}\r\nConnection: close\r\n\r\n")


def median_login(server, user, password, n=5):
    return statistics.median(server.login(user, password)[1] for _ in range(n))


def section_1():
    h10 = hash_password("benchpw", 10)
    server = Server({"real": h10, "other": h10})
    baseline = median_login(server, "real", "benchpw")
    cpu_before = server.cpu_seconds()
    flood = login_request("nobody", "x", "10.0.0.1").encode()
    started = time.monotonic()
    for _ in range(200):
        with socket.create_connection(server.addr) as s:
            s.sendall(flood)
    sent = time.monotonic() - started
    code, behind = server.login("real", "benchpw")
    time.sleep(1)
    # Wait until the server is idle again (what the flood cost in the end).
    while True:
        a = server.cpu_seconds()
        time.sleep(0.5)
        if server.cpu_seconds() - a < 0.02:
            break
    cpu = server.cpu_seconds() - cpu_before
    print(f"1a closed-connection flood: 200 unknown-account logins sent in {sent:.2f} s, "
          f"server CPU {cpu:.1f} s; a real login behind them: {behind:.0f} ms (status {code}), "
          f"normally {baseline:.0f} ms")

    async def open_flood():
        conns = []
        for _ in range(200):
            r, w = await asyncio.open_connection(*server.addr)
            w.write(flood)
            conns.append((r, w))
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        code, other = await loop.run_in_executor(None, server.login, "real", "benchpw", "10.0.0.2")
        codes = []
        for r, w in conns:
            data = await r.read()
            codes.append(status(data.decode("latin-1")))
            w.close()
        return code, other, codes

    code, other, codes = asyncio.run(open_flood())
    summary = ", ".join(f"{codes.count(c)}x{c}" for c in sorted(set(codes)))
    print(f"1b open flood from one IP (200 unknown-account logins): a login from another IP took "
          f"{other:.0f} ms (status {code}); the flood got {summary}")
    server.stop()


def section_2():
    server = Server({"user": hash_password("benchpw", 5)})
    time.sleep(0.5)
    idle = server.rss_mb()
    idle_anon = (server.rss_mb("RssAnon"), server.rss_mb("RssFile"))
    peak = [idle]
    body = b"a" * 64000
    head = (b"POST /auth HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 65000\r\n\r\n")
    n = int(os.environ.get("BODY_CONNECTIONS", "15000"))
    codes = []

    async def one(sem):
        async with sem:
            r, w = await asyncio.open_connection(*server.addr)
        try:
            w.write(head + body)
            await w.drain()
            return r, w
        except OSError:
            w.close()
            return None

    async def sample(stop):
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            await asyncio.sleep(0.05)

    async def flood():
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(stop))
        sem = asyncio.Semaphore(2000)  # connects in flight
        started = time.monotonic()
        conns = [c for c in await asyncio.gather(*(one(sem) for _ in range(n))) if c]
        sent = time.monotonic() - started
        after_send = server.rss_mb()
        for r, w in conns:
            try:
                data = await asyncio.wait_for(r.read(200), 30)
                codes.append(status(data.decode("latin-1")))
            except (OSError, asyncio.TimeoutError):
                codes.append(0)
            w.close()
        answered = time.monotonic() - started
        stop.set()
        await sampler
        return sent, after_send, answered, len(conns)

    sent, after_send, answered, opened = asyncio.run(flood())
    time.sleep(3)
    after = server.rss_mb()
    time.sleep(7)
    later = server.rss_mb()
    time.sleep(50)
    minute = server.rss_mb()
    anon = (server.rss_mb("RssAnon"), server.rss_mb("RssFile"))
    summary = ", ".join(f"{codes.count(c)}x{c or 'none'}" for c in sorted(set(codes)))
    print(f"2 body flood: {opened} connections x 64,000 of 65,000 bytes, sent in {sent:.1f} s, all answered "
          f"after {answered:.1f} s ({summary}); RSS idle {idle:.1f} MB, peak {max(peak[0], server.rss_mb('VmHWM')):.0f} MB, "
          f"when all had sent {after_send:.0f} MB, 3 s after all closed {after:.1f} MB, 10 s after {later:.1f} MB, "
          f"60 s after {minute:.1f} MB ({anon[0]:.1f} MB anonymous, {anon[1]:.1f} MB file-backed; idle: "
          f"{idle_anon[0]:.1f} + {idle_anon[1]:.1f})")
    server.stop()


def section_10():
    h5 = hash_password("benchpw", 5)
    users = {f"user{i}": h5 for i in range(5)}
    users["slow13"] = hash_password("benchpw", 13)
    users["plain"] = "not-a-bcrypt-hash"
    server = Server(users)
    slow = median_login(server, "slow13", "wrong")
    unknown = median_login(server, "nobody", "wrong")
    plain = median_login(server, "plain", "wrong")
    print(f"10 timing (median of 5): cost-13 user, wrong password {slow:.0f} ms; unknown account "
          f"{unknown:.0f} ms; stored password not a bcrypt hash {plain:.1f} ms (5 users at cost 5)")
    server.stop()


soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
version = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
print(f"bench/dos.py on {BIN} ({version}), {os.cpu_count()} cores, {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
for section in SECTIONS:
    {"1": section_1, "2": section_2, "10": section_10}[section]()
