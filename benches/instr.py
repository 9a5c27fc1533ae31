#!/usr/bin/env python3
"""Fixed-count client for benches/instr.sh: a repeatable request stream, so an instruction
count (callgrind) can be divided by the requests served.

  instr.py PORT fill KEYS                      store memtier-1..KEYS (values 32..100 bytes)
  instr.py PORT gets ROUNDS CONNS DEPTH KEYS   ROUNDS x CONNS batches of DEPTH `get k`, one
                                               write per batch (mc-crusher's ascii_get)
  instr.py PORT mget ROUNDS CONNS NKEYS KEYS   ROUNDS x CONNS `get k1 .. kN` lines
                                               (mc-crusher's ascii_mget)

Closed loop: every connection writes its batch, then all replies are read (the reply count is
checked), so the server sees the same reads each run. Keys are drawn with a fixed seed.
"""
import random
import socket
import sys


def conns(port, n):
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out.append(s)
    return out


def read_until(s, ends, buf=b""):
    """Read until `ends` replies ended by END\\r\\n have arrived (values hold no `END`)."""
    seen = buf.count(b"END\r\n")
    while seen < ends:
        b = s.recv(1 << 20)
        if not b:
            raise SystemExit("server closed")
        buf += b
        seen = buf.count(b"END\r\n")
    return buf


def fill(port, keys):
    (s,) = conns(port, 1)
    rnd = random.Random(1)
    step = 1000
    for lo in range(1, keys + 1, step):
        req = []
        hi = min(lo + step, keys + 1)
        for k in range(lo, hi):
            v = b"x" * rnd.randint(32, 100)
            req.append(b"set memtier-%d 0 0 %d\r\n%s\r\n" % (k, len(v), v))
        s.sendall(b"".join(req))
        want = (hi - lo) * len(b"STORED\r\n")
        got = b""
        while len(got) < want:
            got += s.recv(1 << 20)
        assert got == b"STORED\r\n" * (hi - lo), got[:100]
    s.close()


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    args = [int(a) for a in sys.argv[3:]]
    if mode == "fill":
        return fill(port, args[0])
    rounds, nconn, per, keys = args
    rnd = random.Random(2)
    cs = conns(port, nconn)
    for _ in range(rounds):
        for s in cs:
            ks = [b"memtier-%d" % rnd.randint(1, keys) for _ in range(per)]
            if mode == "gets":
                s.sendall(b"".join(b"get %s\r\n" % k for k in ks))
            else:
                s.sendall(b"get " + b" ".join(ks) + b"\r\n")
        for s in cs:
            buf = read_until(s, per if mode == "gets" else 1)
            hits = buf.count(b"VALUE ")
            if hits != per:
                raise SystemExit("expected %d hits, got %d" % (per, hits))
    for s in cs:
        s.close()


main()
