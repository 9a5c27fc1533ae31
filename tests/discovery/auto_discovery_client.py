"""elasticache-auto-discovery (`config get cluster` over a plain socket) feeding pymemcache's
HashClient, given one node.

Usage: auto_discovery_client.py HOST:PORT NKEYS
Same transcript as django_elastipymemcache_client.py; this library discovers on demand, so
after the line on stdin it asks again and rebuilds the HashClient from the new list.
"""
import sys

from elasticache_auto_discovery import discover
from pymemcache.client.hash import HashClient

endpoint, nkeys = sys.argv[1], int(sys.argv[2])


def connect():
    found = discover(endpoint, time_to_timeout=5)
    servers = [(ip.decode(), int(port)) for _host, ip, port in found]
    names = sorted(f"{h}:{p}" for h, p in servers)
    # default_noreply=False: a set returns once stored, so the test may count items after "stored"
    return HashClient(servers, connect_timeout=2, timeout=2, default_noreply=False), names


client, names = connect()
print("nodes", " ".join(names), flush=True)
for i in range(nkeys):
    client.set(f"before:{i}", f"v{i}", expire=600)
print("stored", nkeys, "before", flush=True)

sys.stdin.readline()
client.close()
client, names = connect()
print("nodes", " ".join(names), flush=True)
for i in range(nkeys):
    client.set(f"after:{i}", f"w{i}", expire=600)
print("stored", nkeys, "after", flush=True)
got = client.get_many([f"after:{i}" for i in range(nkeys)])
ok = sum(1 for i in range(nkeys) if got.get(f"after:{i}") == f"w{i}".encode())
print("read", ok, "after", flush=True)
client.close()
