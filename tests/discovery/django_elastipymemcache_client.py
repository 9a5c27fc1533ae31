"""django-elastipymemcache (pymemcache's HashClient behind Django's cache API) given one node.

Usage: django_elastipymemcache_client.py HOST:PORT NKEYS
Prints the nodes it discovered and what it stored; after a line on stdin (the node list was
changed and the nodes were sent SIGHUP), waits for its own periodic discovery to follow the
change, then stores and reads NKEYS more keys.
"""
import sys
import time

import django
from django.conf import settings

endpoint, nkeys = sys.argv[1], int(sys.argv[2])
settings.configure(
    CACHES={
        "default": {
            "BACKEND": "django_elastipymemcache.backend.ElastiPymemcache",
            "LOCATION": endpoint,
            # re-poll `config get cluster` at most every 0.2 s (jittered by the library)
            "OPTIONS": {"discovery_interval": 0.2, "connect_timeout": 2, "timeout": 2},
        }
    }
)
django.setup()
from django.core.cache import cache  # noqa: E402


def nodes():
    return sorted(cache._cache.clients.keys())


print("nodes", " ".join(nodes()), flush=True)
for i in range(nkeys):
    cache.set(f"before:{i}", f"v{i}", timeout=600)
print("stored", nkeys, "before", flush=True)

sys.stdin.readline()
deadline = time.monotonic() + 15
before = nodes()
while nodes() == before and time.monotonic() < deadline:
    cache.get("probe")  # any command lets the client re-poll once the interval has passed
    time.sleep(0.05)
print("nodes", " ".join(nodes()), flush=True)
for i in range(nkeys):
    cache.set(f"after:{i}", f"w{i}", timeout=600)
print("stored", nkeys, "after", flush=True)
got = cache.get_many([f"after:{i}" for i in range(nkeys)])
ok = sum(1 for i in range(nkeys) if got.get(f"after:{i}") == f"w{i}")
print("read", ok, "after", flush=True)
cache.close()
