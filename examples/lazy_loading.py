"""Lazy loading (cache-aside): read the cache first; on a miss read the database and fill the
cache, so only data that is asked for gets cached, and a lost node only costs misses.

    python3 examples/lazy_loading.py [HOST:PORT]      # default 127.0.0.1:11211

The database is SQLite (in memory), the client pymemcache. The program checks the pattern's
promise as it goes (an assert fails otherwise) and prints what happened.
"""
import json
import sqlite3
import sys

from pymemcache.client.base import Client

TTL = 300  # seconds: a bound on how stale a cached row may get if the database is changed elsewhere

host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:11211").rsplit(":", 1)
cache = Client((host, int(port)), connect_timeout=2, timeout=2, default_noreply=False)

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT, price_cents INTEGER)")
db.executemany("INSERT INTO product VALUES (?, ?, ?)", [(1, "kettle", 2999), (2, "teapot", 1950)])
db_reads = 0


def get_product(product_id):
    """The cache-aside read path."""
    global db_reads
    key = f"product:{product_id}"
    cached = cache.get(key)
    if cached is not None:
        return json.loads(cached), "hit"
    db_reads += 1
    row = db.execute("SELECT id, name, price_cents FROM product WHERE id = ?", (product_id,)).fetchone()
    if row is None:
        return None, "miss, not in the database"
    product = {"id": row[0], "name": row[1], "price_cents": row[2]}
    cache.set(key, json.dumps(product), expire=TTL)
    return product, "miss, read the database and filled the cache"


cache.delete("product:1")
first, how = get_product(1)
print("first read: ", first, how)
assert how.startswith("miss") and db_reads == 1
second, how = get_product(1)
print("second read:", second, how)
assert how == "hit" and second == first and db_reads == 1, "a hit must not touch the database"

# A change made straight in the database is not seen until the entry expires or is deleted:
# that staleness is the price of lazy loading (write_through.py avoids it for our own writes).
db.execute("UPDATE product SET price_cents = 2499 WHERE id = 1")
third, how = get_product(1)
print("after a database-only update:", third, how)
assert how == "hit" and third["price_cents"] == 2999
cache.delete("product:1")
fourth, how = get_product(1)
print("after invalidating the key: ", fourth, how)
assert how.startswith("miss") and fourth["price_cents"] == 2499 and db_reads == 2
print("ok: misses read the database once and fill the cache; hits never touch the database")
