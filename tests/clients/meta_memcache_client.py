"""meta-memcache (PyPI, meta protocol) driven by tests/clients.rs.

    python3 meta_memcache_client.py PORT

Run with the python3 that has meta-memcache installed (.ci/run pip-installs it). Prints one
line per operation: `what -> result`, so the test compares actual values. Remaining TTLs are
printed as ranges and last-access times not at all: those move with the clock.
"""

import hashlib
import meta_memcache
import random
import sys

from meta_memcache import (
    CacheClient,
    Key,
    LeasePolicy,
    RecachePolicy,
    RequestFlags,
    ServerAddress,
    SetMode,
    StalePolicy,
    Success,
    Value,
    connection_pool_factory_builder,
)

PORT = int(sys.argv[1])
ITEM_MAX = 1024 * 1024  # memcached's default -I


def show(value):
    if isinstance(value, (bytes, str)) and len(value) > 64:
        data = value if isinstance(value, bytes) else value.encode()
        return f"<{type(value).__name__} len={len(data)} sha1={hashlib.sha1(data).hexdigest()[:12]}>"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in sorted(value.items(), key=repr)) + "}"
    if isinstance(value, Key):
        return f"Key({value.key!r})"
    return repr(value)


def step(label, fn, *args, **kwargs):
    try:
        result = show(fn(*args, **kwargs))
    except Exception as e:  # the library's exception is the result under test
        result = f"!{type(e).__name__}({str(e).replace(str(PORT), 'PORT')})"
    print(f"{label} -> {result}", flush=True)


def client():
    # A read buffer as large as an item: with the default 4 KB one a 1 MB value takes ~25 s.
    pool = connection_pool_factory_builder(connection_timeout=2, recv_timeout=5, read_buffer_size=ITEM_MAX + 4096)
    return CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host="127.0.0.1", port=PORT)], connection_pool_factory_fn=pool)


def meta(c, key, **flags):
    """A raw meta get: the response type and the deterministic flags."""
    r = c.meta_get(Key(key), flags=RequestFlags(**flags))
    if isinstance(r, (Value, Success)):
        f = r.flags
        ttl = f.ttl if f.ttl is None or f.ttl < 0 else ("<=3600" if f.ttl <= 3600 else ">3600")
        size = r.size if isinstance(r, Value) else None
        return (type(r).__name__, size, f.client_flag, ttl, f.fetched, f.win, f.stale)
    return type(r).__name__


def no_wait(seconds):
    print(f"  (lease wait {seconds:.2f}s skipped)", flush=True)


print(f"library meta-memcache {meta_memcache.__version__}")
mc = client()
other = client()
get_flags = dict(return_value=True, return_ttl=True, return_client_flag=True, return_fetched=True)

# set / get / multi-get, serialization (MixedSerializer: flags say the type)
step("set foo 'bar'", mc.set, "foo", "bar", ttl=0)
step("get foo", mc.get, "foo")
step("meta get foo", meta, mc, "foo", **get_flags)
step("get missing", mc.get, "missing")
for name, value in [("int", 42), ("bytes", b"\x00\x01raw"), ("list", [1, "two", 3.0]),
                    ("dict", {"a": 1}), ("long text", "x" * 500), ("unicode", "h\u00e9llo \u2603")]:
    step(f"set {name}", mc.set, name, value, ttl=3600)
    step(f"get {name}", mc.get, name)
    step(f"meta get {name} (size, flags)", meta, mc, name, **get_flags)
step("multi_get foo int missing", mc.multi_get, ["foo", "int", "missing"])
step("get_typed int as int", mc.get_typed, "int", int)
step("get_typed int as str", mc.get_typed, "int", str)

# set modes, refill
step("set ADD foo", mc.set, "foo", "other", ttl=0, set_mode=SetMode.ADD)
step("set ADD newkey", mc.set, "newkey", "new", ttl=0, set_mode=SetMode.ADD)
step("set REPLACE nokey", mc.set, "nokey", "x", ttl=0, set_mode=SetMode.REPLACE)
step("set REPLACE foo", mc.set, "foo", "baz", ttl=0, set_mode=SetMode.REPLACE)
step("set APPEND foo", mc.set, "foo", "!", ttl=0, set_mode=SetMode.APPEND)
step("set PREPEND foo", mc.set, "foo", "<", ttl=0, set_mode=SetMode.PREPEND)
step("get foo", mc.get, "foo")
step("set APPEND nokey", mc.set, "nokey", "x", ttl=0, set_mode=SetMode.APPEND)
step("refill foo (exists)", mc.refill, "foo", "refilled", ttl=0)
step("refill refilled (missing)", mc.refill, "refilled", "value", ttl=0)
step("get refilled", mc.get, "refilled")

# CAS
value, cas = mc.get_cas("foo")
step("get_cas foo", lambda: (value, isinstance(cas, int) and cas > 0))
step("set foo stale cas", mc.set, "foo", "stale", ttl=0, cas_token=cas + 1000)
step("set foo right cas", mc.set, "foo", "swapped", ttl=0, cas_token=cas)
step("set foo same cas again", mc.set, "foo", "again", ttl=0, cas_token=cas)
step("set_cas returns a new token", lambda: (mc.set_cas("foo", "t", ttl=0) or 0) > cas)
step("set nokey with cas", mc.set, "nokey", "x", ttl=0, cas_token=1)
step("multi_get_cas foo missing", lambda: {k.key: (v, c is not None) for k, v, c in
                                           ((k, *vc) for k, vc in mc.multi_get_cas(["foo", "missing"]).items())})
_, cas = mc.get_cas("foo")
step("delete foo stale cas", mc.delete, "foo", cas_token=cas + 1000)
step("get foo", mc.get, "foo")

# counters
step("delta missing", mc.delta, "counter", 1)
step("delta_and_get missing", mc.delta_and_get, "counter", 1)
step("delta_initialize missing (initial 10)", mc.delta_initialize, "counter", 1, initial_value=10, initial_ttl=3600)
step("get counter", mc.get, "counter")
step("delta_and_get +5", mc.delta_and_get, "counter", 5)
step("delta_and_get -3", mc.delta_and_get, "counter", -3)
step("delta_and_get -100 (floors at 0)", mc.delta_and_get, "counter", -100)
step("delta_initialize_and_get missing", mc.delta_initialize_and_get, "counter2", 2, initial_value=7, initial_ttl=0)
step("delta +1 on a string", mc.delta, "foo", 1)
step("delta noreply", mc.delta, "counter", 1, no_reply=True)
step("delta_and_get +0", mc.delta_and_get, "counter", 0)

# delete / invalidate / touch
step("delete newkey", mc.delete, "newkey")
step("delete newkey again", mc.delete, "newkey")
step("invalidate newkey (missing is fine)", mc.invalidate, "newkey")
step("touch foo", mc.touch, "foo", 3600)
step("meta get foo ttl", meta, mc, "foo", return_ttl=True)
step("touch nokey", mc.touch, "nokey", 3600)
step("get with touch_ttl", mc.get, "int", touch_ttl=7200)
step("meta get int ttl", meta, mc, "int", return_ttl=True)

# noreply writes, then read them back on the same client
step("set nr1 noreply", mc.set, "nr1", "a", ttl=0, no_reply=True)
step("set ADD nr1 noreply (not stored, silent)", mc.set, "nr1", "b", ttl=0, set_mode=SetMode.ADD, no_reply=True)
step("set APPEND nr1 noreply", mc.set, "nr1", "c", ttl=0, set_mode=SetMode.APPEND, no_reply=True)
step("delete nr2 noreply (missing, silent)", mc.delete, "nr2", no_reply=True)
step("get nr1", mc.get, "nr1")

# stale-while-revalidate: delete marks stale, one client wins the recache, others get stale
stale = StalePolicy(mark_stale_on_deletion_ttl=30)
step("set page v1", mc.set, "page", "v1", ttl=3600)
step("delete page marking it stale", mc.delete, "page", stale_policy=stale)
step("meta get page (first: stale, win)", meta, mc, "page", **get_flags)
step("meta get page (second: stale, lose)", meta, other, "page", **get_flags)
step("get page on another client (stale value)", other.get, "page")
step("get page (high level: lost, stale value)", mc.get, "page")
_, page_cas = mc.get_cas("page")
step("set page v2 with the stale item's cas", mc.set, "page", "v2", ttl=3600, cas_token=page_cas)
step("meta get page (fresh)", meta, other, "page", **get_flags)
step("get page", other.get, "page")
step("set page v3 with an old cas, stale policy", mc.set, "page", "v3", ttl=3600, cas_token=page_cas,
     stale_policy=StalePolicy(mark_stale_on_cas_mismatch=True))
step("meta get page (stale after cas mismatch)", meta, other, "page", **get_flags)

# recache: a remaining TTL under the recache TTL hands out one win token
recache = RecachePolicy(ttl=30)
step("set hot ttl=10", mc.set, "hot", "h1", ttl=10)
step("get hot with recache (wins: looks like a miss)", mc.get, "hot", recache_policy=recache)
step("get hot with recache (loses: value)", other.get, "hot", recache_policy=recache)
step("meta get hot", meta, other, "hot", **get_flags)
step("set cold ttl=3600", mc.set, "cold", "c1", ttl=3600)
step("get cold with recache (no token)", mc.get, "cold", recache_policy=recache)

# leases on miss: the first client wins and fills, others wait (waits skipped here)
lease = LeasePolicy(ttl=30, miss_retries=2, miss_retry_wait=0.01)
step("get_or_lease item (wins the lease)", mc.get_or_lease, "item", lease, lease_wait_fn=no_wait)
step("meta get item (placeholder)", meta, other, "item", **get_flags)
step("get_or_lease item on another client (loses, gives up)", other.get_or_lease, "item", lease,
     lease_wait_fn=no_wait)
step("get_or_lease_cas item", lambda: mc.get_or_lease_cas("item", lease, lease_wait_fn=no_wait)[0])
_, item_cas = mc.get_or_lease_cas("item", lease, lease_wait_fn=no_wait)
step("fill item with the lease cas", mc.set, "item", "filled", ttl=3600, cas_token=item_cas)
step("get_or_lease item (hit)", other.get_or_lease, "item", lease, lease_wait_fn=no_wait)

# keys: long and non-ASCII keys are hashed/base64-encoded by the library
key250 = "k" * 250
step("set 250-byte key", mc.set, key250, "long", ttl=0)
step("get 250-byte key", mc.get, key250)
step("set 300-byte key", mc.set, "x" * 300, "longer", ttl=0)
step("get 300-byte key", mc.get, "x" * 300)
step("set unicode key", mc.set, "cl\u00e9 \u2603", "u", ttl=0)
step("get unicode key", mc.get, "cl\u00e9 \u2603")
step("set key with space", mc.set, "a b", "spaced", ttl=0)
step("get key with space", mc.get, "a b")

# binary-safe values and large values
tricky = b"a\r\nb\r\nEND\r\nVA 1\r\n\x00\xff" + bytes(range(256))
step("set tricky bytes", mc.set, Key("tricky", disabled_compression=True), tricky, ttl=0)
step("get tricky equal", lambda: mc.get("tricky") == tricky)
big = random.Random(7).randbytes(ITEM_MAX - 1024)  # incompressible: zlib makes it larger
step("set ~1 MB random bytes", mc.set, "big", big, ttl=0)
step("get big equal", lambda: mc.get("big") == big)
step("set 2 MB random bytes (too large)", mc.set, "huge", random.Random(8).randbytes(2 * ITEM_MAX), ttl=0)
step("get huge", mc.get, "huge")
step("get foo (connection usable)", mc.get, "foo")
step("set 3 MB compressible (zlib under 1 MB)", mc.set, "zipped", b"z" * (3 * ITEM_MAX), ttl=0)
step("get zipped", mc.get, "zipped")
