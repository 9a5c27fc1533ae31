"""A session store shared by several web servers, with a TTL: a user logs in through one
server and is recognised by another, until the session has been idle for TTL seconds.

    python3 examples/session_store.py [HOST:PORT] [--advance-clock]

Two WSGI web servers (Python's wsgiref, each with its own pymemcache client, as two machines
behind a load balancer would have) share sessions through the cache; users live in SQLite.
Sessions slide: each request pushes the expiry TTL seconds out (`touch`). Waiting out the TTL
sleeps, or with --advance-clock moves the server's clock instead (`debugtime`, which needs a
server started with `-o debug_time`). The program checks each step and prints what happened.
"""
import json
import secrets
import socket
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from pymemcache.client.base import Client

TTL = 5  # seconds of inactivity before a session is gone (real sites: 20-30 minutes)

args = [a for a in sys.argv[1:] if not a.startswith("--")]
host, port = (args[0] if args else "127.0.0.1:11211").rsplit(":", 1)
advance_clock = "--advance-clock" in sys.argv

users = sqlite3.connect(":memory:", check_same_thread=False)
users.execute("CREATE TABLE user (name TEXT PRIMARY KEY, full_name TEXT)")
users.execute("INSERT INTO user VALUES ('ada', 'Ada Lovelace')")
users_lock = threading.Lock()


def web_app(name):
    """One web server's application; its sessions are only in the shared cache. pymemcache
    sends sets as `noreply` unless told otherwise; a login must be stored before the reply
    reaches the browser, or its next request, sent to the other server, can miss it."""
    cache = Client((host, int(port)), connect_timeout=2, timeout=2, default_noreply=False)

    def app(environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/login" and method == "POST":
            user = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
            with users_lock:
                row = users.execute("SELECT full_name FROM user WHERE name = ?", (user,)).fetchone()
            if row is None:
                start_response("403 Forbidden", [])
                return [b"unknown user\n"]
            sid = secrets.token_urlsafe(16)
            cache.set(f"session:{sid}", json.dumps({"user": user, "full_name": row[0]}), expire=TTL)
            start_response("200 OK", [("Set-Cookie", f"sid={sid}; HttpOnly")])
            return [f"{name}: logged in {user}\n".encode()]
        if path == "/me":
            cookie = environ.get("HTTP_COOKIE", "")
            sid = cookie.split("sid=", 1)[1].split(";")[0] if "sid=" in cookie else ""
            raw = cache.get(f"session:{sid}") if sid else None
            if raw is None:
                start_response("401 Unauthorized", [])
                return [f"{name}: no session\n".encode()]
            cache.touch(f"session:{sid}", expire=TTL)  # sliding expiry
            start_response("200 OK", [])
            return [f"{name}: hello {json.loads(raw)['full_name']}\n".encode()]
        start_response("404 Not Found", [])
        return [b""]

    return app


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


servers = []
for name in ("web-1", "web-2"):
    srv = make_server("127.0.0.1", 0, web_app(name), handler_class=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers.append(f"http://127.0.0.1:{srv.server_port}")


def request(base, path, data=None, cookie=None):
    req = urllib.request.Request(base + path, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode().strip(), r.headers.get("Set-Cookie", "").split(";")[0]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode().strip(), ""


def idle(seconds):
    """Let `seconds` pass for the cache: really, or by moving the server's clock."""
    if advance_clock:
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(f"debugtime {seconds}\r\n".encode())
            assert s.recv(64) == b"OK\r\n", "debugtime needs a server started with -o debug_time"
    else:
        time.sleep(seconds)


status, body, cookie = request(servers[0], "/login", data=b"ada")
print("POST web-1/login:", status, body)
assert status == 200 and cookie.startswith("sid=")
status, body, _ = request(servers[1], "/me", cookie=cookie)
print("GET  web-2/me:   ", status, body)
assert (status, body) == (200, "web-2: hello Ada Lovelace"), "the other server sees the session"
status, body, _ = request(servers[0], "/me", cookie=cookie)
print("GET  web-1/me:   ", status, body)
assert status == 200
status, body, _ = request(servers[1], "/me")
print("GET  web-2/me without the cookie:", status, body)
assert status == 401

for _ in range(2):  # active users keep their session: each request slides the expiry
    idle(TTL - 2)  # the server clock ticks in whole seconds: stay clear of the edge
    status, body, _ = request(servers[1], "/me", cookie=cookie)
    print(f"GET  web-2/me after {TTL - 2} s idle:", status, body)
    assert status == 200, "a session used within its TTL stays"

idle(TTL + 2)
status, body, _ = request(servers[1], "/me", cookie=cookie)
print(f"GET  web-2/me after {TTL + 2} s idle:", status, body)
assert (status, body) == (401, "web-2: no session"), "an idle session expires after its TTL"
print("ok: a session written through one server is read through the other and expires after its TTL")
