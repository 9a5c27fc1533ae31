#!/usr/bin/python3
"""A real libmemcached client (pylibmc, ketama) driven by tests/scaleout.rs.

    pylibmc_client.py SERVERS BEHAVIOR ACTION PREFIX FIRST COUNT

SERVERS  comma-separated host:port list, in ring order
BEHAVIOR ketama_weighted | ketama_md5
ACTION   set: store PREFIX<i> = v<i>; get: read them one by one, checking values;
         get_multi: read them with get_multi in batches of 100
Keys are PREFIX<i> for i in FIRST..FIRST+COUNT. Prints lines the test parses:

    ok N
    failed N          (set errors; get errors such as a stopped server)
    miss N            (get: not found)
    bad i i i ...     (indexes that failed or missed)
"""

import sys

import pylibmc

BEHAVIORS = {
    "ketama_weighted": {"ketama_weighted": True},
    "ketama_md5": {"ketama": True, "hash": "md5"},
}


def text(value):
    """Values stored by other clients come back as bytes (flags 0), pylibmc's own as str."""
    return value.decode() if isinstance(value, bytes) else value


def main():
    servers, behavior, action, prefix, first, count = sys.argv[1:7]
    first, count = int(first), int(count)
    # No retry back-off between attempts so each call reports the server's real state.
    behaviors = dict(BEHAVIORS[behavior], connect_timeout=1000, retry_timeout=0)
    client = pylibmc.Client(servers.split(","), behaviors=behaviors)
    indexes = range(first, first + count)
    ok, failed, miss, bad = 0, 0, 0, []
    if action == "set":
        for i in indexes:
            try:
                client.set(f"{prefix}{i}", f"v{i}")
                ok += 1
            except pylibmc.Error:
                failed += 1
                bad.append(i)
    elif action == "get":
        for i in indexes:
            try:
                value = client.get(f"{prefix}{i}")
            except pylibmc.Error:
                failed += 1
                bad.append(i)
                continue
            if value is None:
                miss += 1
                bad.append(i)
            else:
                assert text(value) == f"v{i}", (i, value)
                ok += 1
    elif action == "get_multi":
        for at in range(first, first + count, 100):
            batch = range(at, min(at + 100, first + count))
            got = client.get_multi([f"{prefix}{i}" for i in batch])
            for i in batch:
                if f"{prefix}{i}" in got:
                    assert text(got[f"{prefix}{i}"]) == f"v{i}"
                    ok += 1
                else:
                    miss += 1
                    bad.append(i)
    else:
        sys.exit(f"unknown action {action}")
    print(f"ok {ok}")
    print(f"failed {failed}")
    print(f"miss {miss}")
    print("bad " + " ".join(map(str, bad)))


if __name__ == "__main__":
    main()
