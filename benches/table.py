#!/usr/bin/env python3
"""README's side-by-side tables from benches/results/users.tsv (benches/users.sh).

    python3 benches/table.py [users.tsv] [--transport plain|tls]

One Markdown row per generator, workload, pipeline depth and connection count (in the order
users.sh runs them), from the paired runs in the file: both servers' throughput ranges, the
rustcached/memcached ratio of each run (paired by run number) and their median, p99 medians,
server CPU per million operations, and the generator's share of its core (near 1.00: the
generator set the pace, so the ratio is a lower bound). The date and commit of the rows are
printed under the table, so README can say what was measured.
"""

import csv
import statistics
import sys
from collections import OrderedDict

WORKLOADS = {
    "gets": "text gets, 16 per write",
    "multiget100": "100-key multi-gets",
    "get90": "90:10 get:set, 32-100 B values",
    "set_1k": "sets, 1 KB values",
    "binary_get90": "binary 90:10 get:set",
    "set_16k": "sets, 16 KB values",
}


def k(n):
    """Throughput in K or M, three significant figures."""
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.0f} K"


def span(values, fmt):
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"


def main(argv):
    path = "benches/results/users.tsv"
    transport = "plain"
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--transport":
            transport = args.pop(0)
        else:
            path = a
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["transport"] == transport]
    groups = OrderedDict()
    for r in rows:
        key = (r["generator"], r["workload"], int(r["depth"]), int(r["conns"]))
        groups.setdefault(key, []).append(r)
    print(
        "| generator | workload | depth × conns | memcached | rustcached | ratio per run (median) "
        "| p99 µs, median (mc / rc) | server CPU s per M ops (mc → rc) | generator's core (mc / rc) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    stamps = set()
    for (gen, wl, depth, conns), rs in groups.items():
        by = {"memcached": {}, "rustcached": {}}
        for r in rs:
            by[r["server"]][int(r["run"])] = r
            stamps.add((r["date"], r["commit"]))
        runs = sorted(set(by["memcached"]) & set(by["rustcached"]))
        if not runs:
            continue
        mc = [by["memcached"][i] for i in runs]
        rc = [by["rustcached"][i] for i in runs]
        tput = lambda rows: [float(r["throughput"]) for r in rows]
        ratios = [b / a for a, b in zip(tput(mc), tput(rc)) if a > 0]
        unit = rs[0]["unit"]
        p99 = lambda rows: [float(r["p99_us"]) for r in rows if r["p99_us"] not in ("NA", "")]
        p99_cell = (
            f"{statistics.median(p99(mc)):.0f} / {statistics.median(p99(rc)):.0f}" if p99(mc) and p99(rc) else "none (blind)"
        )
        cpu = lambda rows: [float(r["server_cpu_s_per_mop"]) for r in rows]
        gcpu = lambda rows: [float(r["gen_cpu_util"]) for r in rows]
        print(
            f"| {gen} | {WORKLOADS.get(wl, wl)} | {depth} × {conns} "
            f"| {span(tput(mc), k)} {unit} | {span(tput(rc), k)} {unit} "
            f"| {' '.join(f'{x:.2f}' for x in ratios)} (**{statistics.median(ratios):.2f}**) "
            f"| {p99_cell} "
            f"| {span(cpu(mc), lambda x: f'{x:.2f}')} → {span(cpu(rc), lambda x: f'{x:.2f}')} "
            f"| {span(gcpu(mc), lambda x: f'{x:.2f}')} / {span(gcpu(rc), lambda x: f'{x:.2f}')} |"
        )
    print()
    print("measured: " + ", ".join(f"{d} at {c}" for d, c in sorted(stamps)))


if __name__ == "__main__":
    main(sys.argv[1:])
