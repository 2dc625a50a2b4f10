#!/usr/bin/env python3
"""Link-time call graph of wardd's modules, from their objects.

For each src/*.o: the functions it defines (nm type T/t is not exported, so
only T) and the symbols it leaves undefined (U).  An edge A -> B means A
calls a function that B defines.  Data (the loop pointer, option globals)
is not a call and makes no edge.

  layers.py [--dot] [--edges] OBJDIR [SRCDIR]  print the graph's summary
  layers.py --check OBJDIR SRCDIR [DIR...]      exit 1 on a cycle, a call up
                                                a layer, or a .c over 900
                                                lines in SRCDIR or a DIR
  layers.py --tap OBJDIR SRCDIR [DIR...]        the same checks as TAP

Layers are read from the "layer:" line of each module's comment
(src/NAME.c), lowest first in LAYERS below; a module may call only modules
of its own layer or below, and the graph must be acyclic.
"""
import os, re, subprocess, sys

LAYERS = ["base", "transport", "engine", "programs", "commands", "wiring"]

def nm(path):
    out = subprocess.run(["nm", "-P", path], capture_output=True, text=True,
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

def members(objdir):
    """The modules linked into wardd: libwardd.a's members and wardd.o
    (not whatever other .o a directory may still hold)."""
    lib = os.path.join(objdir, "libwardd.a")
    if not os.path.exists(lib):
        return [os.path.join(objdir, f) for f in sorted(os.listdir(objdir))
                if f.endswith(".o")]
    names = subprocess.run(["ar", "t", lib], capture_output=True, text=True,
                           check=True).stdout.split()
    out = [os.path.join(objdir, n.replace("src_libwardd_a-", "")) for n in names]
    out.append(os.path.join(objdir, "wardd.o"))
    return [p for p in out if os.path.exists(p)]

def graph(objdir):
    mods = {}
    for path in members(objdir):
        mods[os.path.basename(path)[:-2]] = nm(path)
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

MAX_LINES = 900

def long_files(dirs):
    out = []
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".c"):
                with open(os.path.join(d, fn)) as f:
                    n = sum(1 for _ in f)
                if n > MAX_LINES:
                    out.append(f"{os.path.join(d, fn)}: {n} lines")
    return out

def tap(objdir, srcdir, dirs):
    nodes, edges = graph(objdir)
    lay = {n: layer_of(srcdir, n) for n in nodes}
    checks = []
    cyc = sccs(nodes, edges)
    checks.append((f"the call graph of {len(nodes)} modules "
                   f"({len(edges)} edges) has no cycle",
                   ["cycle: " + " ".join(sorted(c)) for c in cyc]))
    checks.append(("every module names its layer",
                   [f"{n}.c: no 'layer:' line" for n in nodes
                    if lay[n] not in LAYERS]))
    up = []
    for (a, b), syms in sorted(edges.items()):
        if lay[a] in LAYERS and lay[b] in LAYERS and \
           LAYERS.index(lay[b]) > LAYERS.index(lay[a]):
            up.append(f"{a} ({lay[a]}) calls up into {b} ({lay[b]}): "
                      + " ".join(sorted(syms)))
    checks.append(("no module calls a layer above its own", up))
    checks.append((f"no .c file over {MAX_LINES} lines",
                   long_files([srcdir] + dirs)))
    print(f"1..{len(checks)}")
    bad = 0
    for k, (what, problems) in enumerate(checks, 1):
        print(("not ok" if problems else "ok") + f" {k} - {what}")
        for p in problems:
            print(f"# {p}")
        bad += bool(problems)
    return 1 if bad else 0

def main():
    args = sys.argv[1:]
    if args and args[0] == "--tap":
        return tap(args[1], args[2], args[3:])
    check = "--check" in args
    dot = "--dot" in args
    show = "--edges" in args
    args = [a for a in args if not a.startswith("--")]
    objdir = args[0]
    srcdir = args[1] if len(args) > 1 else None
    if check:
        return tap(objdir, srcdir, args[2:])
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
