#!/usr/bin/env python3
"""Record golden text-protocol conversations from a real memcached.

Usage:
    python3 tests/cases/record.py tests/cases/text.spec tests/cases/text.cases \
        [--memcached /usr/bin/memcached] [--silence 0.15] [--only NAME]

Reads a .spec file (cases with `send:` lines only, see README.md), replays every
case against memcached and writes the same file with one `recv:` line after each
`send:` (plus a final `close` line when the server closed the connection).
Values that legitimately differ between runs or implementations are replaced by
the wildcard token `{*}` (see MASKS below).  Python 3 stdlib only.

Servers: cases without `fresh` share one memcached per distinct `args:` string
(started lazily, in file order); a `fresh` case gets its own memcached, killed
right after the case.  Every case uses exactly one new TCP connection, opened
by retrying connect() until the listener is up, so a fresh server has seen no
other connection before the case's own (stats counters stay deterministic).
Every memcached started here is killed on exit, including on errors/Ctrl-C.
"""

import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

WILDCARD = b"{*}"

# Each mask: (regex over one reply line without its CRLF, replacement template).
# In the template, "{*}" is the wildcard and \1.. are the regex groups (kept
# literal).  Only lines of multi-line replies that are not VALUE data are masked.
MASKS = [
    # Process identity / clock / build: differ on every run or build.
    (rb"^STAT (pid|uptime|time|version|libevent|rusage_user|rusage_system) .*$", rb"STAT \1 {*}"),
    (rb"^VERSION .*$", rb"VERSION {*}"),
    # Implementation-specific memory layout (hash table and connection buffer
    # allocator sizes: rustcached has no reason to match memcached's numbers).
    (rb"^STAT (hash_bytes|response_obj_bytes|response_obj_count|read_buf_count"
     rb"|read_buf_bytes|read_buf_bytes_free) .*$", rb"STAT \1 {*}"),
    # Background LRU-maintainer / crawler threads run on timers: nondeterministic.
    (rb"^STAT (lru_maintainer_juggles|lru_crawler_starts|lru_crawler_running) .*$", rb"STAT \1 {*}"),
    # The segmented-LRU maintainer thread moves items HOT->COLD on its own
    # schedule, so per-segment counts/moves/hits and crawler work are timing
    # dependent; stats items ages are seconds since last access (clock).
    # The same threads reclaim expired/flushed items behind the client's back, so
    # whether a later get counts get_expired/get_flushed or the item was already
    # reclaimed (reclaimed, expired_unfetched) is a race.  lrutail_reflocked counts
    # memcached's refcount collisions at an LRU tail (implementation-specific).
    (rb"^STAT (moves_to_cold|moves_to_warm|moves_within_lru|crawler_items_checked"
     rb"|crawler_reclaimed|reclaimed|expired_unfetched|get_expired|get_flushed"
     rb"|lrutail_reflocked) .*$", rb"STAT \1 {*}"),
    (rb"^STAT (items:\d+:(?:age|age_hot|age_warm|number_hot|number_warm|number_cold"
     rb"|moves_to_cold|moves_to_warm|moves_within_lru|hits_to_hot|hits_to_warm"
     rb"|hits_to_cold|crawler_items_checked|crawler_reclaimed|reclaimed"
     rb"|expired_unfetched|lrutail_reflocked)) .*$", rb"STAT \1 {*}"),
    # stats settings: the port is chosen by the runner.
    (rb"^STAT tcpport .*$", rb"STAT tcpport {*}"),
    # stats conns: fd numbers, client ports and idle seconds are per run.
    (rb"^STAT \d+:(addr|listen_addr) tcp:127\.0\.0\.1:\d+$", rb"STAT {*}:\1 tcp:127.0.0.1:{*}"),
    (rb"^STAT \d+:(state|secs_since_last_cmd) .*$", rb"STAT {*}:\1 {*}"),
]
MASKS = [(re.compile(p), t) for p, t in MASKS]

_VALUE_RE = re.compile(rb"^VALUE [^ ]+ \d+ (\d+)(?: \d+)?$")


class SpecError(Exception):
    pass


# ---------------------------------------------------------------- escaping --

def unescape(text, where):
    """C-style escapes -> bytes: \\r \\n \\t \\\\ \\xNN; everything else literal (UTF-8)."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "r":
            out += b"\r"; i += 2
        elif nxt == "n":
            out += b"\n"; i += 2
        elif nxt == "t":
            out += b"\t"; i += 2
        elif nxt == "\\":
            out += b"\\"; i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4] or ""):
            out.append(int(text[i + 2:i + 4], 16)); i += 4
        else:
            raise SpecError("%s: bad escape at column %d" % (where, i))
    return bytes(out)


def escape(data):
    """bytes -> escaped text. Printable ASCII literal except '\\'; a literal
    '{*}' in the data is written '\\x7b*}' so it is not taken as the wildcard."""
    out = []
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7B and data[i:i + 3] == WILDCARD:
            out.append("\\x7b")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
        i += 1
    return "".join(out)


def mask_line(line):
    """Return a list of segments (bytes, or None for the wildcard)."""
    for rx, tmpl in MASKS:
        m = rx.match(line)
        if m:
            expanded = m.expand(tmpl)
            parts = expanded.split(WILDCARD)
            segs = []
            for j, p in enumerate(parts):
                if j:
                    segs.append(None)
                if p:
                    segs.append(p)
            return segs
    return [line]


def render_reply(data):
    """Escape a reply, masking volatile values line by line (skipping VALUE data)."""
    out = []
    pos = 0
    while pos < len(data):
        eol = data.find(b"\r\n", pos)
        if eol < 0:  # trailing partial line: keep literally
            out.append(escape(data[pos:]))
            break
        line = data[pos:eol]
        for seg in mask_line(line):
            out.append("{*}" if seg is None else escape(seg))
        out.append("\\r\\n")
        pos = eol + 2
        m = _VALUE_RE.match(line)
        if m:  # data block of a VALUE: never masked
            n = int(m.group(1)) + 2
            out.append(escape(data[pos:pos + n]))
            pos += n
    return "".join(out)


# ----------------------------------------------------------------- parsing --

class Case:
    def __init__(self, name, lineno):
        self.name = name
        self.lineno = lineno
        self.args = []
        self.fresh = False
        self.sends = []          # bytes per send
        self.spec_close = False  # `close` was written in the spec (informative)


def parse_spec(path):
    """Return (lines, cases). lines are the raw spec lines (recv/close dropped
    later); cases in file order."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cases, names, cur = [], set(), None
    for no, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        where = "%s:%d" % (path, no)
        if line.startswith("=== "):
            name = line[4:].strip()
            if not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
                raise SpecError("%s: bad case name %r" % (where, name))
            if name in names:
                raise SpecError("%s: duplicate case name %r" % (where, name))
            names.add(name)
            cur = Case(name, no)
            cases.append(cur)
        elif line == "" or line.startswith("#"):
            continue
        elif cur is None:
            raise SpecError("%s: line outside a case: %r" % (where, line[:60]))
        elif line.startswith("send:"):
            cur.sends.append(unescape(line[6:] if line.startswith("send: ") else line[5:], where))
        elif line.startswith("recv:"):
            continue  # regenerated
        elif line == "close":
            cur.spec_close = True
        elif line.startswith("args:"):
            if cur.sends:
                raise SpecError("%s: args: after send:" % where)
            cur.args = line[5:].split()
        elif line == "fresh":
            if cur.sends:
                raise SpecError("%s: fresh after send:" % where)
            cur.fresh = True
        else:
            raise SpecError("%s: unknown line %r" % (where, line[:60]))
    for c in cases:
        if not c.sends:
            raise SpecError("%s:%d: case %s has no send:" % (path, c.lineno, c.name))
    return lines, cases


# ----------------------------------------------------------------- servers --

_ALL_PROCS = []


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, args):
        self.args = args
        last_err = ""
        for _attempt in range(5):
            self.port = _free_port()
            cmd = [binary, "-p", str(self.port), "-l", "127.0.0.1", "-U", "0"]
            if os.geteuid() == 0:
                cmd += ["-u", "root"]  # memcached refuses to run as root without -u
            cmd += args
            self.errf = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=self.errf, stderr=self.errf,
                                         start_new_session=True)
            _ALL_PROCS.append(self.proc)
            time.sleep(0.02)
            if self.proc.poll() is None:
                return
            self.errf.seek(0)
            last_err = self.errf.read().decode("utf-8", "replace")
            if "bind" not in last_err and "listen" not in last_err:
                break
        raise RuntimeError("memcached %s failed to start: %s" % (" ".join(args), last_err.strip()))

    def connect(self, timeout=5.0):
        """One connection, retrying until the listener is up (no probe connections)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.errf.seek(0)
                raise RuntimeError("memcached exited (%s): %s" % (
                    self.proc.returncode, self.errf.read().decode("utf-8", "replace").strip()))
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.connect(("127.0.0.1", self.port))
                return s
            except (ConnectionRefusedError, OSError):
                s.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("cannot connect to memcached on port %d" % self.port)
                time.sleep(0.01)

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()


def _kill_all():
    for p in _ALL_PROCS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=3)
            except Exception:
                pass


# --------------------------------------------------------------- recording --

def read_reply(sock, silence, cap=10.0):
    """Read until `silence` seconds pass without data, the peer closes, or `cap`."""
    buf = bytearray()
    start = time.monotonic()
    quiet_until = start + silence
    while True:
        now = time.monotonic()
        if now >= quiet_until or now - start > cap:
            return bytes(buf), False
        r, _, _ = select.select([sock], [], [], quiet_until - now)
        if not r:
            continue
        try:
            chunk = sock.recv(1 << 20)
        except (ConnectionResetError, ConnectionAbortedError):
            return bytes(buf), True
        if not chunk:
            return bytes(buf), True
        buf += chunk
        quiet_until = time.monotonic() + silence


def run_case(case, server, silence):
    sock = server.connect()
    replies, closed = [], False
    try:
        for i, data in enumerate(case.sends):
            if closed:
                raise SpecError("case %s: server closed the connection before send #%d"
                                % (case.name, i + 1))
            try:
                if data:
                    sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # whatever was sent before the close is still read below
            # Big payloads take longer: scale the quiet window a little.
            reply, closed = read_reply(sock, silence + min(len(data), 1 << 22) / 50e6)
            replies.append(reply)
    finally:
        sock.close()
    return replies, closed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec")
    ap.add_argument("out")
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    ap.add_argument("--silence", type=float, default=0.15,
                    help="seconds of silence that end a reply (default 0.15)")
    ap.add_argument("--only", action="append",
                    help="record only this case (repeatable); print the result, do not write OUT")
    opts = ap.parse_args()

    version = subprocess.run([opts.memcached, "-V"], capture_output=True,
                             text=True).stdout.strip()
    lines, cases = parse_spec(opts.spec)
    if opts.only:
        cases = [c for c in cases if c.name in opts.only]

    shared = {}
    results = {}
    try:
        for case in cases:
            key = " ".join(case.args)
            if case.fresh:
                srv = Server(opts.memcached, case.args)
            else:
                srv = shared.get(key)
                if srv is None:
                    srv = shared[key] = Server(opts.memcached, case.args)
            try:
                replies, closed = run_case(case, srv, opts.silence)
                if not case.fresh and not srv.alive():
                    raise SpecError("case %s killed the shared server: mark it fresh" % case.name)
            finally:
                if case.fresh:
                    srv.kill()
            if case.spec_close != closed:
                print("note: case %s: spec says close=%s, server close=%s"
                      % (case.name, case.spec_close, closed), file=sys.stderr)
            results[case.name] = (replies, closed)
    finally:
        for srv in shared.values():
            srv.kill()
        _kill_all()

    if opts.only:
        for c in cases:
            replies, closed = results[c.name]
            print("=== " + c.name)
            for s, r in zip(c.sends, replies):
                print("send: " + escape(s))
                print("recv: " + render_reply(r))
            if closed:
                print("close")
        return 0

    out = ["# GENERATED by tests/cases/record.py from %s against %s -- do not edit;"
           % (os.path.basename(opts.spec), version),
           "# edit the .spec and re-record.  `{*}` = any run of bytes except CR/LF."]
    cur, sends_left, replies, closed = None, 0, [], False
    for raw in lines:
        line = raw.rstrip("\r")
        if line.startswith("=== "):
            cur = line[4:].strip()
            replies, closed = results[cur]
            replies = list(replies)
            sends_left = len(replies)
        if line.startswith("recv:") or line == "close":
            continue
        out.append(line)
        if line.startswith("send:"):
            out.append("recv: " + render_reply(replies.pop(0)))
            sends_left -= 1
            if sends_left == 0 and closed:
                out.append("close")
    with open(opts.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")
    print("recorded %d cases -> %s" % (len(results), opts.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        sys.exit(main())
    except SpecError as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(2)
    except RuntimeError as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(1)
