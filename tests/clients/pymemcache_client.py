#!/usr/bin/python3
"""pymemcache (Debian's python3-pymemcache, text protocol) driven by tests/clients.rs.

    pymemcache_client.py single PORT
    pymemcache_client.py hash PORT1 PORT2
    pymemcache_client.py closes PORT

Prints one line per operation: `what -> result` (results as Python reprs, exceptions as
`!Class(message)`, large values as length and digest), so the test compares actual values.
Nothing here depends on time passing: expiry uses a negative TTL (already expired).
"""

import hashlib
import random
import sys
import time

import pymemcache
from pymemcache import serde
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

HOST = "127.0.0.1"
ITEM_MAX = 1024 * 1024  # memcached's default -I


def show(value):
    if isinstance(value, (bytes, str)) and len(value) > 64:
        data = value if isinstance(value, bytes) else value.encode()
        return f"<{type(value).__name__} len={len(data)} sha1={hashlib.sha1(data).hexdigest()[:12]}>"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


def step(label, fn, *args, **kwargs):
    try:
        result = show(fn(*args, **kwargs))
    except Exception as e:  # the library's exception is the result under test
        result = f"!{type(e).__name__}({show(e.args[0]) if e.args else ''})"
    print(f"{label} -> {result}", flush=True)


class FlagsSerde:
    """Shows what is on the wire: (value bytes, flags) on reads, values sent as given."""

    def serialize(self, key, value):
        return value, 0

    def deserialize(self, key, value, flags):
        return (value, flags)


def single(port):
    mc = Client((HOST, port), serde=serde.pickle_serde, connect_timeout=2, timeout=5,
                default_noreply=False)
    raw = Client((HOST, port), serde=FlagsSerde(), connect_timeout=2, timeout=5,
                 default_noreply=False)

    print(f"library pymemcache {pymemcache.__version__}")
    step("version starts 1.6.18", lambda: mc.version().startswith(b"1.6.18"))
    step("flush_all", mc.flush_all)

    # set / get / multi-get
    step("set foo 'bar'", mc.set, "foo", "bar")
    step("get foo", mc.get, "foo")
    step("raw get foo", raw.get, "foo")
    step("set bytes b'b1'", mc.set, "bytes", b"b1")
    step("raw get bytes", raw.get, "bytes")
    step("get missing", mc.get, "missing")
    step("get missing default", mc.get, "missing", default="dflt")
    step("set flagged flags=123", raw.set, "flagged", b"x", flags=123)
    step("raw get flagged", raw.get, "flagged")
    step("set flagged flags=4294967295", raw.set, "flagged", b"y", flags=4294967295)
    step("raw get flagged", raw.get, "flagged")
    step("get_many foo bytes missing", mc.get_many, ["foo", "bytes", "missing"])
    step("get_many (none)", mc.get_many, [])
    step("set_many 3", mc.set_many, {"m1": "one", "m2": 2, "m3": b"three"})
    step("get_many m1 m2 m3 m4", mc.get_many, ["m1", "m2", "m3", "m4"])
    step("gets_many m1 foo", lambda: {k: v[0] for k, v in mc.gets_many(["m1", "foo"]).items()})

    # add / replace
    step("add foo", mc.add, "foo", "other")
    step("add newkey", mc.add, "newkey", "new")
    step("get newkey", mc.get, "newkey")
    step("replace nokey", mc.replace, "nokey", "x")
    step("get nokey", mc.get, "nokey")
    step("replace foo", mc.replace, "foo", "baz")
    step("get foo", mc.get, "foo")

    # append / prepend
    step("append foo '!'", raw.append, "foo", b"!")
    step("prepend foo '<'", raw.prepend, "foo", b"<")
    step("get foo", mc.get, "foo")
    step("raw get foo (flags kept)", raw.get, "foo")
    step("append nokey", raw.append, "nokey", b"x")
    step("prepend nokey", raw.prepend, "nokey", b"x")

    # gets / cas
    step("gets foo has cas", lambda: mc.gets("foo")[1].isdigit())
    step("gets missing", mc.gets, "missing")
    value, cas = mc.gets("foo")
    step("cas foo stale cas", mc.cas, "foo", "stale", str(int(cas) + 1000))
    step("cas foo right cas", mc.cas, "foo", "swapped", cas)
    step("cas foo same cas again", mc.cas, "foo", "again", cas)
    step("get foo", mc.get, "foo")
    step("cas missing", mc.cas, "missing", "x", "1")
    _, cas2 = mc.gets("foo")
    step("cas changed after cas", lambda: cas2 != cas)
    step("touch foo keeps cas", lambda: (mc.touch("foo", 100), mc.gets("foo")[1] == cas2))
    step("append changes cas", lambda: (raw.append("foo", b"."), mc.gets("foo")[1] != cas2))

    # incr / decr
    step("incr missing", mc.incr, "counter", 1)
    step("decr missing", mc.decr, "counter", 1)
    step("set counter 10", mc.set, "counter", 10)
    step("raw get counter", raw.get, "counter")
    step("incr counter 5", mc.incr, "counter", 5)
    step("get counter", mc.get, "counter")
    step("decr counter 3", mc.decr, "counter", 3)
    step("decr counter 100 (floors at 0)", mc.decr, "counter", 100)
    step("set counter 2**64-1", mc.set, "counter", 2**64 - 1)
    step("incr counter 1 (wraps)", mc.incr, "counter", 1)
    step("set counter '99'", raw.set, "counter", b"99")
    step("incr counter 1 (99 -> 100, grows)", mc.incr, "counter", 1)
    step("raw get counter", raw.get, "counter")
    step("decr counter 91 (100 -> 9, length kept)", mc.decr, "counter", 91)
    step("raw get counter", raw.get, "counter")
    step("incr counter noreply", mc.incr, "counter", 1, noreply=True)
    step("get counter", mc.get, "counter")
    step("incr foo (not a number)", mc.incr, "foo", 1)
    step("set neg '-1'", raw.set, "neg", b"-1")
    step("incr neg", mc.incr, "neg", 1)
    step("incr counter 2**64 (too big)", mc.incr, "counter", 2**64)
    step("incr counter -1", mc.incr, "counter", -1)

    # delete / touch / expiry
    step("delete newkey", mc.delete, "newkey")
    step("delete newkey again", mc.delete, "newkey")
    step("get newkey", mc.get, "newkey")
    step("delete_many m1 m2 nokey", mc.delete_many, ["m1", "m2", "nokey"])
    step("get_many m1 m2 m3", mc.get_many, ["m1", "m2", "m3"])
    step("touch m3", mc.touch, "m3", 3600)
    step("touch nokey", mc.touch, "nokey", 3600)
    step("set gone ttl=-1 (expired at once)", mc.set, "gone", "x", expire=-1)
    step("get gone", mc.get, "gone")
    step("set m3 ttl=3600", mc.set, "m3", "x", expire=3600)
    step("touch m3 ttl=-1", mc.touch, "m3", -1)
    step("get m3", mc.get, "m3")

    # serialization of non-string values (pickle_serde)
    for name, value in [("int", 42), ("bigint", 2**70), ("float", 1.5), ("list", [1, "two", 3.0]),
                        ("dict", {"a": 1, "b": [2, 3]}), ("none", None), ("bool", True),
                        ("text", "h\u00e9llo \u2603"), ("tuple", (1, 2))]:
        step(f"set {name}", mc.set, name, value)
        step(f"get {name}", mc.get, name)
        step(f"raw flags {name}", lambda n=name: raw.get(n)[1])

    # binary-safe values, keys
    tricky = b"a\r\nb\r\nEND\r\nVALUE x 0 1\r\n\x00\xff" + bytes(range(256))
    step("set tricky (CRLF, NUL, all bytes)", raw.set, "tricky", tricky)
    step("raw get tricky equal", lambda: raw.get("tricky") == (tricky, 0))
    step("set empty value", raw.set, "empty", b"")
    step("raw get empty", raw.get, "empty")
    key250 = "k" * 250
    step("set 250-byte key", mc.set, key250, "long")
    step("get 250-byte key", mc.get, key250)
    step("get_many 250-byte key + foo", lambda: sorted(mc.get_many([key250, "foo"]).values()))
    step("set 251-byte key", mc.set, "k" * 251, "x")
    step("set key with space", mc.set, "a b", "x")
    step("set key with newline", mc.set, "a\nb", "x")
    step("get key with control char", mc.get, "a\x01b")
    key_punct = "user:42/{profile}|v=1&x=~!@#$%^*()"
    step("set punctuation key", mc.set, key_punct, "p")
    step("get punctuation key", mc.get, key_punct)

    # large values: the largest that fits with flags 0 and a 3-byte key, and one byte more
    limit = ITEM_MAX - 56 - (3 + 1) - 2  # memcached 1.6 item header + key + NUL + CRLF
    big = random.Random(7).randbytes(limit)
    step(f"set big {limit} bytes", raw.set, "big", big)
    step("raw get big", lambda: (show(raw.get("big")[0]), raw.get("big")[0] == big))
    step(f"set big {limit + 1} bytes (too large)", raw.set, "big", big + b"x")
    step("get big after refused set (old value dropped)", raw.get, "big")
    step("get foo (connection usable)", mc.get, "foo")
    near = random.Random(8).randbytes(ITEM_MAX - 512)
    step("set near1m", raw.set, "near1m", near)
    step("add near1m (exists)", raw.add, "near1m", near)
    step("get_many near1m big foo", lambda: sorted(
        (k, show(v[0])) for k, v in raw.get_many(["near1m", "big", "foo"]).items()))
    step("append 600 bytes to near1m (too large)", raw.append, "near1m", b"z" * 600)
    step("get near1m intact", lambda: raw.get("near1m")[0] == near)
    step("set 2 MB (too large)", raw.set, "huge", b"h" * (2 * ITEM_MAX))
    step("get huge", raw.get, "huge")
    step("delete near1m", mc.delete, "near1m")

    # noreply variants (pipelined on one connection: the server must stay in step)
    step("set nr1 noreply", mc.set, "nr1", "a", noreply=True)
    step("add nr1 noreply (not stored, silent)", mc.add, "nr1", "b", noreply=True)
    step("replace nr1 noreply", mc.replace, "nr1", "c", noreply=True)
    step("append nr1 noreply", mc.append, "nr1", "d", noreply=True)
    step("prepend nr1 noreply", mc.prepend, "nr1", "e", noreply=True)
    step("get nr1", mc.get, "nr1")
    _, nr_cas = mc.gets("nr1")
    step("cas nr1 noreply", mc.cas, "nr1", "f", nr_cas, noreply=True)
    step("get nr1", mc.get, "nr1")
    step("touch nr1 noreply", mc.touch, "nr1", 100, noreply=True)
    step("set_many noreply", mc.set_many, {"nr2": "x", "nr3": "y"}, noreply=True)
    step("delete nr1 noreply", mc.delete, "nr1", noreply=True)
    step("delete_many nr2 nr3 noreply", mc.delete_many, ["nr2", "nr3"], noreply=True)
    step("get_many nr1 nr2 nr3 foo", mc.get_many, ["nr1", "nr2", "nr3", "foo"])

    # stats / version / misc commands
    stats = mc.stats()
    for name in [b"cmd_get", b"get_hits", b"get_misses", b"cmd_set", b"cmd_touch", b"touch_hits",
                 b"touch_misses", b"cmd_flush", b"delete_hits", b"delete_misses", b"incr_hits",
                 b"incr_misses", b"decr_hits", b"decr_misses", b"cas_hits", b"cas_misses",
                 b"cas_badval", b"threads", b"limit_maxbytes"]:
        step(f"stats {name.decode()}", stats.get, name)
    step("stats version starts 1.6.18", lambda: stats[b"version"].startswith(b"1.6.18"))
    step("stats uptime is int", lambda: isinstance(stats[b"uptime"], int))
    step("stats pid is int", lambda: isinstance(stats[b"pid"], int))
    settings = mc.stats("settings")
    for name in [b"maxbytes", b"maxconns", b"item_size_max", b"cas_enabled", b"evictions",
                 b"growth_factor", b"binding_protocol", b"flush_enabled"]:
        step(f"stats settings {name.decode()}", settings.get, name)
    step("stats bogus", mc.stats, "bogus")
    step("stats reset", lambda: mc.stats("reset"))
    step("stats get_hits after reset", lambda: mc.stats()[b"get_hits"])
    step("cache_memlimit 100", mc.cache_memlimit, 100)
    step("stats settings maxbytes", lambda: mc.stats("settings")[b"maxbytes"])
    step("flush_all", mc.flush_all)
    step("get_many foo counter after flush", mc.get_many, ["foo", "counter"])
    step("set foo after flush", mc.set, "foo", "fresh")
    step("get foo", mc.get, "foo")
    step("flush_all noreply", mc.flush_all, noreply=True)
    step("get foo", mc.get, "foo")
    step("quit", mc.quit)
    step("get foo after quit (reconnects)", mc.get, "foo")
    step("set foo after quit", mc.set, "foo", "again")
    step("get foo", mc.get, "foo")
    mc.close()
    raw.close()


def hashed(port1, port2):
    servers = [(HOST, port1), (HOST, port2)]
    hc = HashClient(servers, serde=serde.pickle_serde, connect_timeout=2, timeout=5,
                    default_noreply=False, retry_attempts=0)
    nodes = [Client(s, connect_timeout=2, timeout=5, default_noreply=False) for s in servers]
    keys = [f"hk:{i}" for i in range(40)]
    step("set_many 40 keys (failed keys)", hc.set_many, {k: i for i, k in enumerate(keys)})
    step("get_many 40 keys equal", lambda: hc.get_many(keys) == {k: i for i, k in enumerate(keys)})
    # Each key lives on exactly the node the hasher picks, and on no other.
    placed = []
    for k in keys:
        picked = hc.hasher.get_node(k)
        on = [n for n, c in enumerate(nodes) if c.get(k) is not None]
        placed.append(on == [[f"{h}:{p}" for h, p in servers].index(picked)])
    step("every key on exactly the picked node", lambda: all(placed))
    step("both nodes used", lambda: all(c.stats()[b"curr_items"] > 0 for c in nodes))
    step("total items", lambda: sum(c.stats()[b"curr_items"] for c in nodes))
    step("get hk:7", hc.get, "hk:7")
    step("incr hk:7", hc.incr, "hk:7", 10)
    step("decr hk:7", hc.decr, "hk:7", 2)
    step("add hk:7", hc.add, "hk:7", 0)
    step("replace hk:7", hc.replace, "hk:7", "r")
    step("append hk:7", hc.append, "hk:7", "+")
    step("prepend hk:7", hc.prepend, "hk:7", "-")
    step("get hk:7", hc.get, "hk:7")
    value, cas = hc.gets("hk:8")
    step("gets hk:8 value", lambda: value)
    step("cas hk:8", hc.cas, "hk:8", "c", cas)
    step("cas hk:8 stale", hc.cas, "hk:8", "d", cas)
    step("touch hk:8", hc.touch, "hk:8", 100)
    step("delete hk:8", hc.delete, "hk:8")
    step("get hk:8", hc.get, "hk:8")
    step("delete_many hk:0..9", hc.delete_many, keys[:10])
    step("get_many hk:0..11", hc.get_many, keys[:12])
    step("flush_all (every node)", hc.flush_all)
    step("get_many after flush", hc.get_many, keys)
    hc.close()
    for c in nodes:
        c.close()


def closes(port):
    """pymemcache closes its socket after an error reply; the server must release each one."""
    watcher = Client((HOST, port), connect_timeout=2, timeout=5, default_noreply=False)
    mc = Client((HOST, port), connect_timeout=2, timeout=5, default_noreply=False)
    step("curr_connections (watcher + client)", lambda: (mc.version(), watcher.stats()[b"curr_connections"])[1])
    for i in range(10):
        step(f"set 2 MB #{i} (client closes after the error)", mc.set, "huge", b"h" * (2 * ITEM_MAX))
    deadline = time.monotonic() + 3
    while watcher.stats()[b"curr_connections"] != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    step("curr_connections within 3 s (only the watcher left)", lambda: watcher.stats()[b"curr_connections"])
    watcher.close()


if __name__ == "__main__":
    mode, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    if mode == "single":
        single(*ports)
    elif mode == "hash":
        hashed(*ports)
    elif mode == "closes":
        closes(*ports)
    else:
        sys.exit(f"unknown mode {mode}")
