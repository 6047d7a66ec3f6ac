#!/usr/bin/env python3
"""Module imports under src/: each file's `crate::`/`super::` paths resolved to the file
that defines them, and any cycle among them (a file importing one that imports it back,
directly or through others). A path through a parent's re-export counts as importing the
parent. Usage: module-cycles.py [--list DIR] — with --list, print the `use crate::…` and
`use super::…` lines of each file in DIR. Exits 1 if there is a cycle."""
import pathlib, re, sys

SRC = pathlib.Path('src')

def module_of(path):
    parts = list(path.relative_to(SRC).with_suffix('').parts)
    if parts[-1] in ('mod', 'lib', 'main'):
        parts = parts[:-1]
    return tuple(parts)

# The binary's modules (src/cli) import the library as `lanterna::`, which cannot import them back;
# among themselves they are checked like the library's.
files = {module_of(p): p for p in SRC.rglob('*.rs') if p.name != 'main.rs'}

def code(path):
    text = path.read_text()
    # Tests may reach anywhere; only the program's own imports count.
    cut = text.find('#[cfg(test)]')
    text = text if cut < 0 else text[:cut]
    return re.sub(r'//.*', '', text)

def resolve(mod, segs):
    """The longest module prefix of an absolute path that is a file."""
    for n in range(len(segs), -1, -1):
        if tuple(segs[:n]) in files:
            return tuple(segs[:n])
    return None

def imports(mod, path):
    out = set()
    text = code(path)
    # `use a::{b, c::d}` groups: expand one level of braces.
    # Paths may start at the crate, the parent, this module, or a child module by name.
    children = {m[-1] for m in files if m[:-1] == mod and m}
    roots = r'(crate|super|self)((?:::\w+)*)'
    kids = r'(' + '|'.join(sorted(children) or ['crate']) + r')((?:::\w+)+)'
    pattern = r'(?<![\w:(])(?:' + roots + '|' + kids + r')(?:::\{([^}]*)\})?'
    for m in re.finditer(pattern, text):
        first, rest = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        base = {'crate': [], 'super': list(mod[:-1]), 'self': list(mod)}.get(first, list(mod) + [first])
        segs = base + [x for x in rest.split('::') if x]
        heads = [segs]
        if m.group(5):
            heads = [segs + [x.strip().split('::')[0]] for x in m.group(5).split(',') if x.strip()]
        for h in heads:
            target = resolve(mod, [s for s in h if s != 'self'])
            if target is not None and target != mod and target != ():
                out.add(target)
    return out

graph = {m: imports(m, p) for m, p in files.items()}

def cycles():
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                out.append(comp)
    for v in graph:
        if v not in index:
            strong(v)
    return out

if '--list' in sys.argv:
    d = pathlib.Path(sys.argv[sys.argv.index('--list') + 1])
    for p in sorted(d.glob('*.rs')):
        print(f'{p}:')
        for line in p.read_text().split('#[cfg(test)]')[0].splitlines():
            if re.match(r'\s*(pub(\(crate\))? )?use (crate|super)::', line):
                print('    ' + line.strip())
name = lambda m: '::'.join(m) or 'crate'
found = cycles()
for comp in found:
    print('cycle: ' + ' <-> '.join(sorted(name(m) for m in comp)))
print(f'{len(graph)} modules, {sum(len(v) for v in graph.values())} imports, {len(found)} cycles')
sys.exit(1 if found else 0)
