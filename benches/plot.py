#!/usr/bin/env python3
"""Plots of benches/results/*.tsv as SVGs in benches/results/.

    python3 -m pip install matplotlib      # once (or: apt-get install python3-matplotlib)
    python3 benches/plot.py [RESULTS_DIR]  # default benches/results

From users.tsv (benches/users.sh), per transport found (plain, tls):
  users-depth[-tls].svg   throughput and p99 against pipeline depth (50 connections, get90)
  users-conns[-tls].svg   throughput and p99 against connection count (unpipelined, get90)
one line per generator and server: the median over runs, the bar spanning the runs (a sweep
with fewer than two points, such as TLS's connection count, is skipped).
From memory.tsv (benches/memory.sh; columns server, value_min, value_max, items,
bytes_per_item):
  memory-items.svg        items held, and overhead per item, against value size
A missing input file is skipped with a note. The SVGs carry no date, so plotting the same
data again gives the same files.
"""

import csv
import os
import statistics
import sys
from collections import defaultdict

import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator, ScalarFormatter

plt.switch_backend("agg")  # files only, no display
plt.rcParams["svg.hashsalt"] = "rustcached"  # stable element ids
plt.rcParams["svg.fonttype"] = "none"  # text stays text
METADATA = {"Date": None, "Creator": None}

COLORS = {"memcached": "tab:blue", "rustcached": "tab:orange"}
STYLES = {"memtier": "-", "rcbench": "--", "mc-crusher": ":"}
MARKERS = {"memtier": "o", "rcbench": "s", "mc-crusher": "^"}


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(directory, name, script):
    """The rows of directory/name, or None (said) when the file is missing."""
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        print(f"no {path} (run {script}): skipped")
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def save(fig, out):
    fig.tight_layout()
    fig.savefig(out, metadata=METADATA)
    plt.close(fig)
    print(f"wrote {out}")


def log_y(ax):
    """A log y axis labelled 1, 2, 5, 10, 20, ... in plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def spread(values):
    """Median and the distance to the lowest and highest value, for an error bar."""
    med = statistics.median(values)
    return med, med - min(values), max(values) - med


def sweep(rows, transport, axis, fixed, fixed_value, out):
    """Throughput and p99 against `axis` (depth or conns) with `fixed` held at `fixed_value`."""
    series = defaultdict(lambda: defaultdict(lambda: {"tput": [], "p99": []}))
    units = set()
    for r in rows:
        if r["transport"] != transport or r["workload"] != "get90" or r[fixed] != fixed_value:
            continue
        x, tput = num(r[axis]), num(r["throughput"])
        if x is None or not tput:
            continue
        cell = series[(r["generator"], r["server"])][x]
        cell["tput"].append(tput)
        units.add(r["unit"])
        p99 = num(r["p99_us"])
        if p99:
            cell["p99"].append(p99)
    if len({x for points in series.values() for x in points}) < 2:
        print(f"{out}: fewer than two {axis} values in {transport} get90 rows: skipped")
        return False
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (gen, server), points in sorted(series.items()):
        xs = sorted(points)
        style = {
            "color": COLORS.get(server, "gray"),
            "linestyle": STYLES.get(gen, "-"),
            "marker": MARKERS.get(gen, "o"),
            "capsize": 3,
            "label": f"{server} ({gen})",
        }
        t = [spread(points[x]["tput"]) for x in xs]
        ax_t.errorbar(
            xs, [m / 1e3 for m, _, _ in t], yerr=[[lo / 1e3 for _, lo, _ in t], [hi / 1e3 for _, _, hi in t]], **style
        )
        lx = [x for x in xs if points[x]["p99"]]
        if lx:
            lat = [spread([v / 1e3 for v in points[x]["p99"]]) for x in lx]
            ax_l.errorbar(
                lx, [m for m, _, _ in lat], yerr=[[lo for _, lo, _ in lat], [hi for _, _, hi in lat]], **style
            )
    what = "pipeline depth (requests in flight per connection)" if axis == "depth" else "connections"
    held = (
        f"{fixed_value} connections"
        if fixed == "conns"
        else ("unpipelined" if fixed_value == "1" else f"depth {fixed_value}")
    )
    unit = "/".join(sorted(units)) or "ops/s"
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2 if axis == "depth" else 10)
        ax.set_xlabel(what)
        ax.grid(True, which="both", alpha=0.3)
        xs = sorted({x for points in series.values() for x in points})
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
        ax.xaxis.set_minor_locator(NullLocator())
    ax_t.set_ylabel(f"throughput (thousand {unit})")
    ax_t.set_ylim(bottom=0)
    ax_l.set_ylabel("p99 latency (ms)")
    log_y(ax_l)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"90:10 get:set, {held}, {transport}; server on one core, generator on the other")
    save(fig, out)
    return True


def users(directory):
    rows = load(directory, "users.tsv", "benches/users.sh")
    if rows is None:
        return
    for transport in sorted({r["transport"] for r in rows}):
        suffix = "" if transport == "plain" else f"-{transport}"
        sweep(rows, transport, "depth", "conns", "50", os.path.join(directory, f"users-depth{suffix}.svg"))
        sweep(rows, transport, "conns", "depth", "1", os.path.join(directory, f"users-conns{suffix}.svg"))


def memory(directory):
    rows = load(directory, "memory.tsv", "benches/memory.sh")
    if rows is None:
        return
    by_server = defaultdict(dict)
    labels = {}
    for r in rows:
        lo, hi, items = num(r["value_min"]), num(r["value_max"]), num(r["items"])
        if lo is None or hi is None or items is None:
            continue
        x = (lo + hi) / 2
        labels[x] = f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
        by_server[r["server"]][x] = (items, num(r.get("bytes_per_item")))
    if not by_server:
        print("memory.tsv has no rows: skipped")
        return
    fig, (ax_i, ax_b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server, points in sorted(by_server.items()):
        xs = sorted(points)
        style = {"color": COLORS.get(server, "gray"), "marker": "o", "label": server}
        ax_i.plot(xs, [points[x][0] / 1e6 for x in xs], **style)
        bx = [x for x in xs if points[x][1] is not None]
        ax_b.plot(bx, [points[x][1] for x in bx], **style)
    xs = sorted(labels)
    for ax in (ax_i, ax_b):
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([labels[x] for x in xs], rotation=30, ha="right")
        ax.minorticks_off()
        ax.set_xlabel("value size (bytes)")
        ax.grid(True, which="both", alpha=0.3)
    ax_i.set_ylabel("items held (millions)")
    log_y(ax_i)
    ax_b.set_ylabel("overhead per item (bytes)")
    ax_b.set_ylim(bottom=0)
    ax_i.legend()
    fig.suptitle("Items held against value size (benches/memory.sh)")
    save(fig, os.path.join(directory, "memory-items.svg"))


def main():
    directory = (
        sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    )
    users(directory)
    memory(directory)


if __name__ == "__main__":
    main()
