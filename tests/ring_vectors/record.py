#!/usr/bin/python3
"""Record which server real libmemcached clients pick for each key (tests/ring_vectors/*.txt).

Run by hand (not by CI) with Debian's python3-pylibmc and memcached installed:

    apt-get install -y python3-pylibmc memcached
    /usr/bin/python3 tests/ring_vectors/record.py

Two sources of truth, both the real libmemcached 1.1.4 (Debian libmemcached11):

* pylibmc: start real memcached nodes on loopback, store every key through a pylibmc
  client with the given behaviors, then ask every node directly (`get`) which one holds it.
  Nothing here computes a hash: the placement is observed.
* ctypes on libmemcached.so.11: `memcached_server_by_key` for server names that do not
  resolve (DNS names are hashed as written, never resolved, so this needs no network).

Output format, one file per configuration:

    # comment lines
    variant ketama_weighted | ketama md5 | ketama one_at_a_time
    servers host:port[:weight] ...
    <key> <index of the server in the servers line>
"""

import ctypes
import json
import os
import socket
import subprocess
import sys
import time

import pylibmc

HERE = os.path.dirname(os.path.abspath(__file__))
MEMCACHED = "/usr/bin/memcached"


def keys(n, tag):
    """Deterministic keys of varied shape: short, long, digits, punctuation, UTF-8."""
    out = []
    for i in range(n):
        shape = i % 6
        if shape == 0:
            out.append(f"{tag}:{i}")
        elif shape == 1:
            out.append(f"user/{i * 7919}/profile")
        elif shape == 2:
            out.append(str(i * 104729))
        elif shape == 3:
            out.append(f"session_{i:08x}_" + "x" * (i % 100))
        elif shape == 4:
            out.append(f"ключ-{i}-ü")
        else:
            out.append(f"a.b-c_d~{i}!$%&*()")
    return out


def start_node(host, port):
    args = [MEMCACHED, "-U", "0", "-l", host, "-p", str(port), "-m", "32"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"memcached on {host}:{port} did not start (port in use?)")


def held_keys(host, port, keys_bytes):
    """Which of keys_bytes the node at host:port holds, asked with plain `get`."""
    held = set()
    with socket.create_connection((host, port)) as s:
        f = s.makefile("rb")
        for at in range(0, len(keys_bytes), 100):
            batch = keys_bytes[at:at + 100]
            s.sendall(b"get " + b" ".join(batch) + b"\r\n")
            while True:
                line = f.readline()
                if line == b"END\r\n":
                    break
                assert line.startswith(b"VALUE "), line
                held.add(line.split(b" ")[1])
                f.readline()  # the value
    return held


def record_pylibmc(name, behaviors, servers, n):
    """Store n keys through pylibmc into live memcached nodes; observe where each landed."""
    addrs = []
    for spec in servers:
        host, port = spec.split(":")[:2]
        addrs.append((host, int(port)))
    procs = [start_node(h, p) for h, p in addrs]
    try:
        client = pylibmc.Client(servers, behaviors=behaviors)
        ks = keys(n, name)
        for k in ks:
            client.set(k, "1")
        kb = [k.encode() for k in ks]
        owner = {}
        for index, (h, p) in enumerate(addrs):
            for k in held_keys(h, p, kb):
                assert k not in owner, f"{k} on two nodes"
                owner[k] = index
        missing = [k for k in kb if k not in owner]
        assert not missing, f"{len(missing)} keys not stored, e.g. {missing[:3]}"
        got = client.get_behaviors()
        header = [
            f"recorded by tests/ring_vectors/record.py: pylibmc {pylibmc.__version__} on "
            f"libmemcached {lib_version()}, keys stored into live memcached nodes and found with get",
            f"pylibmc.Client(servers, behaviors={json.dumps(behaviors)})",
            f"effective: hash={got['hash']} distribution={got['distribution']!r}",
        ]
        write(name, header, variant(behaviors), servers, [(k, owner[k]) for k in kb])
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def lib():
    return ctypes.CDLL("libmemcached.so.11")


def lib_version():
    f = lib().memcached_lib_version
    f.restype = ctypes.c_char_p
    return f().decode()


# enum positions in libmemcached-1.0/types/behavior.h and types/hash.h
BEHAVIOR_HASH = 2
BEHAVIOR_KETAMA = 3
BEHAVIOR_KETAMA_WEIGHTED = 16
HASH_MD5 = 1


def record_library(name, settings, servers, n):
    """Ask libmemcached itself (memcached_server_by_key) where each key goes; no connections."""
    lm = lib()
    lm.memcached_create.restype = ctypes.c_void_p
    lm.memcached_create.argtypes = [ctypes.c_void_p]
    lm.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
    lm.memcached_server_add_with_weight.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16,
                                                    ctypes.c_uint32]
    lm.memcached_server_by_key.restype = ctypes.c_void_p
    lm.memcached_server_by_key.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                           ctypes.POINTER(ctypes.c_int)]
    lm.memcached_server_name.restype = ctypes.c_char_p
    lm.memcached_server_name.argtypes = [ctypes.c_void_p]
    lm.memcached_server_port.restype = ctypes.c_uint16
    lm.memcached_server_port.argtypes = [ctypes.c_void_p]
    lm.memcached_free.argtypes = [ctypes.c_void_p]

    memc = lm.memcached_create(None)
    for spec in servers:
        parts = spec.split(":")
        weight = int(parts[2]) if len(parts) > 2 else 1
        assert lm.memcached_server_add_with_weight(memc, parts[0].encode(), int(parts[1]), weight) == 0
    for flag, value in settings:
        assert lm.memcached_behavior_set(memc, flag, value) == 0
    index_of = {(s.split(":")[0], int(s.split(":")[1])): i for i, s in enumerate(servers)}
    rows = []
    for k in keys(n, name):
        kb = k.encode()
        rc = ctypes.c_int(0)
        inst = lm.memcached_server_by_key(memc, kb, len(kb), ctypes.byref(rc))
        assert inst and rc.value == 0, rc.value
        host = lm.memcached_server_name(inst).decode()
        rows.append((kb, index_of[(host, lm.memcached_server_port(inst))]))
    lm.memcached_free(memc)
    names = {BEHAVIOR_HASH: "HASH", BEHAVIOR_KETAMA: "KETAMA", BEHAVIOR_KETAMA_WEIGHTED: "KETAMA_WEIGHTED"}
    header = [
        f"recorded by tests/ring_vectors/record.py: libmemcached {lib_version()} memcached_server_by_key "
        f"(ctypes), no connections",
        "memcached_server_add_with_weight(each server), then memcached_behavior_set: "
        + ", ".join(f"MEMCACHED_BEHAVIOR_{names[f]}={v}" for f, v in settings),
    ]
    weighted = any(f == BEHAVIOR_KETAMA_WEIGHTED for f, _ in settings)
    md5 = any(f == BEHAVIOR_HASH and v == HASH_MD5 for f, v in settings)
    v = "ketama_weighted" if weighted else ("ketama md5" if md5 else "ketama one_at_a_time")
    write(name, header, v, servers, rows)


def variant(behaviors):
    if behaviors.get("ketama_weighted"):
        return "ketama_weighted"
    return "ketama md5" if behaviors.get("hash") == "md5" else "ketama one_at_a_time"


def write(name, header, variant_line, servers, rows):
    path = os.path.join(HERE, f"{name}.txt")
    with open(path, "wb") as f:
        for line in header:
            f.write(f"# {line}\n".encode())
        f.write(f"variant {variant_line}\n".encode())
        f.write(("servers " + " ".join(servers) + "\n").encode())
        for k, index in rows:
            f.write(k + b" " + str(index).encode() + b"\n")
    counts = [sum(1 for _, i in rows if i == s) for s in range(len(servers))]
    print(f"{path}: {len(rows)} keys, per server {counts}")


def main():
    n = 3000
    # Port 11211 is left out of libmemcached's point names ("127.0.0.2-0"), so use three
    # loopback addresses on the default port.
    record_pylibmc("pylibmc_weighted_default_port", {"ketama_weighted": True},
                   ["127.0.0.2:11211", "127.0.0.3:11211", "127.0.0.4:11211"], n)
    record_pylibmc("pylibmc_weighted_weights", {"ketama_weighted": True},
                   ["127.0.0.1:21101:1", "127.0.0.1:21102:2", "127.0.0.1:21103:1", "127.0.0.1:21104:3"], n)
    record_pylibmc("pylibmc_ketama_md5", {"ketama": True, "hash": "md5"},
                   [f"127.0.0.1:{21110 + i}" for i in range(5)], n)
    record_pylibmc("pylibmc_ketama_default_hash", {"ketama": True},
                   ["127.0.0.1:21120", "127.0.0.1:21121", "127.0.0.1:11211"], n)
    record_library("libmemcached_weighted_hostnames",
                   [(BEHAVIOR_KETAMA_WEIGHTED, 1)],
                   ["cache-a.example.com:11211", "cache-b.example.com:11211:2", "cache-c.example.com:11311",
                    "10.0.0.4:11211"], n)


if __name__ == "__main__":
    main()
