#!/usr/bin/env python3
"""Self cost per function from a callgrind output file, code inlined into a function counted
as that function's (callgrind_annotate splits it by source file instead).

  cgself.py FILE [DIVISOR] [TOP]              Ir (and cache events, if simulated) per
                                              function, divided by DIVISOR (requests)
  cgself.py FILE DIVISOR TOP --lines REGEX    per source line, inside functions matching REGEX
"""
import re
import sys


def main():
    path = sys.argv[1]
    div = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    lines_re = re.compile(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--lines" else None
    names = {"fn": {}, "fl": {}}
    events = ["Ir"]
    cost = {}
    fn = None
    fl = None
    line_no = 0
    skip_next = False

    def name(kind, spec):
        m = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if not m:
            return spec
        if m.group(2):
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), m.group(1))

    for raw in open(path, errors="replace"):
        line = raw.rstrip("\n")
        if line.startswith("events:"):
            events = line.split()[1:]
            continue
        key, _, val = line.partition("=")
        if key in ("fl", "fi", "fe"):
            fl = name("fl", val)
            continue
        if key == "fn":
            fn = name("fn", val)
            continue
        if key in ("cfn",):
            name("fn", val)
            continue
        if key in ("cfl", "cfi"):
            name("fl", val)
            continue
        if key == "calls":
            skip_next = True
            continue
        if not line or not (line[0].isdigit() or line[0] in "+-*"):
            continue
        parts = line.split()
        pos = parts[0]
        if pos == "*":
            pass
        elif pos[0] in "+-":
            line_no += int(pos)
        else:
            line_no = int(pos)
        if skip_next:  # the inclusive cost of a call, not this function's own
            skip_next = False
            continue
        vals = [int(v) for v in parts[1:]] + [0] * (len(events) - len(parts) + 1)
        if lines_re is not None:
            if not lines_re.search(fn or ""):
                continue
            k = "%s:%d" % (fl, line_no)
        else:
            k = fn
        acc = cost.setdefault(k, [0] * len(events))
        for i, v in enumerate(vals[: len(events)]):
            acc[i] += v
    total = [sum(c[i] for c in cost.values()) for i in range(len(events))]
    shown = [i for i, e in enumerate(events) if e in ("Ir", "Dr", "Dw", "D1mr", "D1mw", "DLmr", "DLmw")]
    print("  ".join("%10s" % events[i] for i in shown) + "          per request")
    print("  ".join("%10.1f" % (total[i] / div) for i in shown) + "          total")
    for k, c in sorted(cost.items(), key=lambda x: -x[1][0])[:top]:
        pct = 100.0 * c[0] / total[0] if total[0] else 0
        print("  ".join("%10.1f" % (c[i] / div) for i in shown) + "  %5.1f%%  %s" % (pct, k[-140:]))


main()
