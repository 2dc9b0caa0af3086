#!/usr/bin/env python3
"""Extracts the C# code blocks of the given Markdown files, so the tests compile and run them.

Every ```csharp block is either a complete program (it has a Main method): written to OUT_DIR as
<readme-tag>_<n>.cs, which test.sh compiles for Mono and CoreCLR and ReadmeSampleTests runs against
the fake WeChat; or a fragment, which must be announced by the line `<!-- fragment: why -->` right
before it (ASP.NET, Microsoft.Extensions.Logging: packages this machine cannot have). An
unannounced block without Main is an error, so no sample can silently go untested.

usage: readme_samples.py OUT_DIR TAG=README.md [TAG=README.md ...]
"""

import os
import re
import sys

FENCE = re.compile(r"^```(\S*)\s*$")


def blocks(path):
    """(language, code, line number, announced fragment reason or None) for each fenced block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i, previous = 0, ""
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        start, lang, body = i + 1, m.group(1), []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        frag = re.match(r"<!--\s*fragment:\s*(.+?)\s*-->", previous)
        yield lang, "\n".join(body) + "\n", start, frag.group(1) if frag else None
        previous = ""
        i += 1


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    errors, written = [], 0
    for spec in specs:
        tag, path = spec.split("=", 1)
        n = 0
        for lang, code, line, fragment in blocks(path):
            if lang not in ("csharp", "cs", "c#"):
                continue
            if re.search(r"\bstatic\s+(async\s+)?(void|int|Task|Task<int>)\s+Main\s*\(", code):
                n += 1
                with open(os.path.join(out, "%s_%d.cs" % (tag, n)), "w", encoding="utf-8") as f:
                    f.write("#line %d \"%s\"\n" % (line + 1, path) + code)
                written += 1
            elif fragment is None:
                errors.append("%s:%d: a C# block with no Main and no <!-- fragment: why --> line before it" % (path, line))
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print("%d complete C# samples" % written)


if __name__ == "__main__":
    main()
