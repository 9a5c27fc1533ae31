"""Write-through: every write goes to the database and then to the cache, so reads of data
we wrote never see a stale entry and never miss.

    python3 examples/write_through.py [HOST:PORT]     # default 127.0.0.1:11211

The database is SQLite (in memory), the client pymemcache. The program checks the pattern's
promise as it goes (an assert fails otherwise) and prints what happened.
"""
import json
import sqlite3
import sys

from pymemcache.client.base import Client

TTL = 3600  # even written-through entries expire, so rows nobody reads leave the cache

host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:11211").rsplit(":", 1)
cache = Client((host, int(port)), connect_timeout=2, timeout=2, default_noreply=False)

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, email TEXT, plan TEXT)")
db_reads = 0


def save_account(account):
    """The write path: database first (the source of truth), then the cache."""
    with db:  # commit, or roll back and leave the cache alone
        db.execute(
            "INSERT INTO account VALUES (:id, :email, :plan)"
            " ON CONFLICT(id) DO UPDATE SET email = :email, plan = :plan",
            account,
        )
    cache.set(f"account:{account['id']}", json.dumps(account), expire=TTL)


def get_account(account_id):
    """The read path: the cache, falling back to the database (lazy loading) for entries that
    expired or were evicted."""
    global db_reads
    cached = cache.get(f"account:{account_id}")
    if cached is not None:
        return json.loads(cached)
    db_reads += 1
    row = db.execute("SELECT id, email, plan FROM account WHERE id = ?", (account_id,)).fetchone()
    account = {"id": row[0], "email": row[1], "plan": row[2]}
    cache.set(f"account:{account_id}", json.dumps(account), expire=TTL)
    return account


def in_database(account_id):
    row = db.execute("SELECT id, email, plan FROM account WHERE id = ?", (account_id,)).fetchone()
    return {"id": row[0], "email": row[1], "plan": row[2]}


save_account({"id": 7, "email": "ada@example.com", "plan": "free"})
print("created:  ", get_account(7))
assert get_account(7) == in_database(7) and db_reads == 0, "a written row is read from the cache"

save_account({"id": 7, "email": "ada@example.com", "plan": "pro"})
got = get_account(7)
print("upgraded: ", got)
assert got["plan"] == "pro" and got == in_database(7) and db_reads == 0, "the cache follows every write"

cache.delete("account:7")  # as if evicted: the read path still works
got = get_account(7)
print("evicted, read back:", got)
assert got == in_database(7) and db_reads == 1
print("ok: every write updated both the database and the cache; reads after writes never missed")
