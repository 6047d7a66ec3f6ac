#!/usr/bin/env python3
"""Lengths of the non-test functions under src/ (rustfmt'd code: a function ends at the
first `}` at its own indentation), longest first. Usage: fn-lengths.py [N] [--max L]
prints the N longest (default 5); with --max, exits 1 if any is longer than L lines."""
import pathlib, re, sys

FN = re.compile(r'^(\s*)(pub(\([a-z]+\))? )?(const )?(async )?(unsafe )?fn (\w+)')

def functions(path):
    lines = path.read_text().splitlines()
    out, i, skip_indent = [], 0, None
    while i < len(lines):
        line = lines[i]
        if line.strip() == '#[cfg(test)]':
            # Skip the test item that follows (a module or a function) to its closing brace.
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not (lines[j].startswith(' ' * indent + '}') and
                                          len(lines[j]) - len(lines[j].lstrip()) == indent):
                j += 1
            i = j + 1
            continue
        m = FN.match(line)
        if m and not line.rstrip().endswith(';'):
            indent = m.group(1)
            j = i
            while j < len(lines) and not (lines[j] == indent + '}' or (j == i and line.rstrip().endswith('}'))):
                j += 1
            out.append((j - i + 1, f'{path}:{i + 1}', m.group(7)))
        i += 1
    return out

args = sys.argv[1:]
limit = None
if '--max' in args:
    k = args.index('--max'); limit = int(args[k + 1]); del args[k:k + 2]
n = int(args[0]) if args else 5
fns = sorted((f for p in sorted(pathlib.Path('src').rglob('*.rs')) for f in functions(p)), reverse=True)
for length, where, name in fns[:n]:
    print(f'{length:4} lines  {name}  ({where})')
if limit is not None:
    over = [f for f in fns if f[0] > limit]
    if over:
        print(f'{len(over)} functions are longer than {limit} lines', file=sys.stderr)
        sys.exit(1)
