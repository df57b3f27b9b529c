#!/usr/bin/env python3
"""layers.py — gantry's module graph, from the #include lines of src/.

A module is a folder under src/ (src/main.c is the module "main"); an arrow
A -> B counts the lines #include "B/x.h" in src/A/*.c and src/A/*.h.

  scripts/layers.py            the graph as text: each module, what it includes (counts)
  scripts/layers.py --dot      the same as Graphviz dot (dot -Tsvg > layers.svg)
  scripts/layers.py --ranks    the layers src/LAYERS declares, top down
  scripts/layers.py --check    fails (exit 1) naming file:line of each include
                               that src/LAYERS does not allow (make layers)

Options: --src DIR (default: src/ beside this script), --layers FILE
(default: DIR/LAYERS).
"""
import argparse
import glob
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"')


def module_of(src, path):
    rel = os.path.relpath(path, src)
    head, tail = os.path.split(rel)
    return head if head else os.path.splitext(tail)[0]


def read_includes(src):
    """[(file, line, from, to)] for every cross-module include, in file order"""
    files = sorted(glob.glob(os.path.join(src, "*", "*.[ch]")) + glob.glob(os.path.join(src, "main.c")))
    out = []
    for path in files:
        m = module_of(src, path)
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                g = INCLUDE.match(line)
                if g and g.group(1) != m:
                    out.append((os.path.relpath(path), n, m, g.group(1)))
    return out


def read_layers(path):
    """(direct: {module: [lower...]}, known: {(from, to): why}); exits on a bad line"""
    direct, known = {}, {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            why = raw.split("#", 1)[1].strip() if "#" in raw else ""
            if not line:
                continue
            k = re.fullmatch(r"known:\s*(\w+)\s*->\s*(\w+)", line)
            d = re.fullmatch(r"(\w+):\s*((?:\w+\s*)*)", line)
            if k:
                known[(k.group(1), k.group(2))] = why
            elif d:
                direct[d.group(1)] = d.group(2).split()
            else:
                sys.exit(f"{path}:{n}: expected 'MODULE: LOWER...' or 'known: A -> B'")
    for m, lows in direct.items():
        for low in lows:
            if low not in direct:
                sys.exit(f"{path}: {m}: '{low}' is not a module of the table")
    return direct, known


def check_acyclic(direct, path):
    """exits naming a cycle of the table, if it has one"""
    state = {}

    def visit(m, stack):
        if state.get(m) == "open":
            sys.exit(f"{path}: the table has a cycle: {' -> '.join(stack + [m])}")
        if state.get(m) != "done":
            state[m] = "open"
            for low in direct[m]:
                visit(low, stack + [m])
            state[m] = "done"

    for m in direct:
        visit(m, [])


def rank(direct):
    """the layer of each module: 0 for util, one more than the highest it may include"""
    r = {}

    def of(m):
        if m not in r:
            r[m] = 1 + max((of(low) for low in direct[m]), default=-1)
        return r[m]

    for m in direct:
        of(m)
    return r


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--src", default=os.path.join(here, "..", "src"))
    ap.add_argument("--layers")
    ap.add_argument("--dot", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--ranks", action="store_true")
    a = ap.parse_args()
    src = os.path.relpath(a.src)
    lpath = a.layers or os.path.join(src, "LAYERS")
    direct, known = read_layers(lpath)
    check_acyclic(direct, lpath)
    allowed = {m: set(lows) for m, lows in direct.items()}
    incs = read_includes(src)

    counts = {}
    for _, _, fr, to in incs:
        counts[(fr, to)] = counts.get((fr, to), 0) + 1

    def kind(fr, to):
        if fr in allowed and to in allowed[fr]:
            return "ok"
        return "known" if (fr, to) in known else "bad"

    if a.check:
        bad = 0
        for path, n, fr, to in incs:
            if fr not in direct:
                print(f"{path}:{n}: module '{fr}' is not in {lpath}", file=sys.stderr)
                bad += 1
            elif kind(fr, to) == "bad":
                may = " ".join(sorted(allowed[fr])) or "nothing"
                print(f"{path}:{n}: {fr} -> {to} is not allowed ({fr} may include: {may})", file=sys.stderr)
                bad += 1
        for (fr, to), why in sorted(known.items()):
            if (fr, to) not in counts:
                print(f"layers: note: known arrow {fr} -> {to} no longer occurs: delete it from {lpath}")
            elif fr in allowed and to in allowed[fr]:
                print(f"layers: note: known arrow {fr} -> {to} is allowed anyway: delete it from {lpath}")
        ntol = sum(c for e, c in counts.items() if kind(*e) == "known")
        if bad:
            print(f"layers: {bad} include(s) against {lpath}", file=sys.stderr)
            return 1
        print(f"layers: ok ({len(incs)} cross-module includes, {ntol} of them on known arrows being removed)")
        return 0

    r = rank(direct)
    mods = sorted(set(direct) | {fr for fr, _ in counts} | {to for _, to in counts}, key=lambda m: (r.get(m, 99), m))
    if a.ranks:
        for lvl in sorted(set(r.values()), reverse=True):
            print(f"{lvl:2}  " + "  ".join(m for m in sorted(direct) if r[m] == lvl))
        return 0
    if a.dot:
        print("digraph gantry {")
        print("  rankdir=BT; node [shape=box, fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];")
        for lvl in sorted(set(r.values())):
            print("  { rank=same; " + " ".join(f'"{m}";' for m in mods if r.get(m) == lvl) + " }")
        for (fr, to), c in sorted(counts.items()):
            style = {"ok": "", "known": ", style=dashed, color=orange", "bad": ", color=red, penwidth=2"}[kind(fr, to)]
            print(f'  "{fr}" -> "{to}" [label={c}{style}];')
        print("}")
        return 0
    print("# module -> what it includes (include lines); * known, being removed; ! not allowed by src/LAYERS")
    width = max(len(m) for m in mods)
    for m in reversed(mods):
        outs = sorted(((to, c) for (fr, to), c in counts.items() if fr == m), key=lambda x: (-r.get(x[0], 99), x[0]))
        mark = {"ok": "", "known": "*", "bad": "!"}
        print(f"{m:<{width}} -> " + (", ".join(f"{to} {c}{mark[kind(m, to)]}" for to, c in outs) or "-"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # | head
        sys.exit(0)
