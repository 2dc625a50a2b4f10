#!/usr/bin/env python3
"""Link-time call graph of wardd's modules, from their objects.

For each src/*.o: the functions it defines (nm type T/t is not exported, so
only T) and the symbols it leaves undefined (U).  An edge A -> B means A
calls a function that B defines.  Data (the loop pointer, option globals)
is not a call and makes no edge.

  layers.py [--dot] [--edges] OBJDIR   print the graph's summary
  layers.py --check OBJDIR              exit 1 on a cycle or a layer breach

Layers are read from the "layer:" line of each module's comment
(src/NAME.c), lowest first in LAYERS below; a module may call only modules
of its own layer or below, and the graph must be acyclic.
"""
import os, re, subprocess, sys

LAYERS = ["base", "transport", "engine", "programs", "commands", "wiring"]

def nm(path):
    out = subprocess.run(["nm", "--defined-only", "-P", path] if False else
                         ["nm", "-P", path], capture_output=True, text=True,
                         check=True).stdout
    defs, uses = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        name, typ = f[0], f[1]
        if typ == "T":
            defs.add(name)
        elif typ == "U":
            uses.add(name)
    return defs, uses

def graph(objdir):
    mods = {}
    for fn in sorted(os.listdir(objdir)):
        if fn.endswith(".o"):
            mods[fn[:-2]] = nm(os.path.join(objdir, fn))
    owner = {}
    for m, (defs, _) in mods.items():
        for s in defs:
            owner[s] = m
    edges = {}
    for m, (_, uses) in mods.items():
        for s in uses:
            o = owner.get(s)
            if o and o != m:
                edges.setdefault((m, o), set()).add(s)
    return list(mods), edges

def sccs(nodes, edges):
    adj = {n: [] for n in nodes}
    for (a, b) in edges:
        adj[a].append(b)
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1
        stack.append(v); on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            out.append(comp)
    sys.setrecursionlimit(10000)
    for n in nodes:
        if n not in index:
            visit(n)
    return [c for c in out if len(c) > 1]

def layer_of(srcdir, mod):
    path = os.path.join(srcdir, mod + ".c")
    try:
        with open(path) as f:
            head = f.read(4000)
    except OSError:
        return None
    m = re.search(r"\blayer:\s*(\w+)", head)
    return m.group(1) if m else None

def main():
    args = sys.argv[1:]
    check = "--check" in args
    dot = "--dot" in args
    show = "--edges" in args
    args = [a for a in args if not a.startswith("--")]
    objdir = args[0]
    srcdir = args[1] if len(args) > 1 else None
    nodes, edges = graph(objdir)
    cyc = sccs(nodes, edges)
    if dot:
        print("digraph wardd {")
        for (a, b) in sorted(edges):
            print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    print(f"{len(nodes)} modules, {len(edges)} edges, "
          f"{len(cyc)} cycle(s)" + ("" if not cyc else ": " +
          "; ".join(" ".join(sorted(c)) for c in cyc)))
    if show:
        for (a, b), syms in sorted(edges.items()):
            print(f"  {a} -> {b}: {' '.join(sorted(syms))}")
    bad = 0
    if srcdir:
        lay = {n: layer_of(srcdir, n) for n in nodes}
        for n in nodes:
            if lay[n] not in LAYERS:
                print(f"layers: {n}.c has no known 'layer:' line "
                      f"(one of {', '.join(LAYERS)})")
                bad += 1
        for (a, b), syms in sorted(edges.items()):
            if lay[a] in LAYERS and lay[b] in LAYERS and \
               LAYERS.index(lay[b]) > LAYERS.index(lay[a]):
                print(f"layers: {a} ({lay[a]}) calls up into {b} ({lay[b]}): "
                      + " ".join(sorted(syms)))
                bad += 1
    if check and (cyc or bad):
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
