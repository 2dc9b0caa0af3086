#!/usr/bin/env python3
"""Pulls the complete code samples out of a Markdown file, so tests can build and run them.

A sample is a fenced code block preceded by a marker comment (blank lines may sit between):

    <!-- test: LANG [name=NAME] [KEY=VALUE ...] -->
    ```cpp
    ...
    ```

LANG is the language the caller asked for (c, cpp, csharp, python, sh, ...); NAME defaults to
LANG_N (N counting that language's samples from 1; names are unique per language); other KEY=VALUE pairs are passed through
for the caller (for example modes=memory,redis,central). Blocks without a marker are
fragments and are ignored, unless --strict is given: then a block whose fence names LANG but
has no marker is an error, so a new complete sample cannot be added untested by accident
(mark fragments with <!-- fragment -->).

How a sample is built and run is the caller's business (each binding's test.sh):

    scripts/readme_samples.py extract README.md --lang c --out DIR
        writes DIR/NAME.EXT for each sample and prints one line per sample:
        NAME<TAB>PATH<TAB>KEY=VALUE ... ; exits 1 if the file has no sample in LANG.
    scripts/readme_samples.py list README.md [--lang LANG]
        prints LANG<TAB>NAME<TAB>LINE for each sample.
"""

import argparse
import os
import re
import sys

MARKER = re.compile(r"^\s*<!--\s*test:\s*([A-Za-z0-9_+#-]+)((?:\s+[A-Za-z0-9_-]+=\S+)*)\s*-->\s*$")
FRAGMENT = re.compile(r"^\s*<!--\s*fragment\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")
EXTENSIONS = {"c": "c", "cpp": "cpp", "c++": "cpp", "csharp": "cs", "cs": "cs", "python": "py", "py": "py",
              "sh": "sh", "bash": "sh", "rust": "rs"}
FENCE_ALIASES = {"c++": "cpp", "cxx": "cpp", "cs": "csharp", "c#": "csharp", "py": "python", "bash": "sh"}


class Sample:
    def __init__(self, lang, name, attrs, line, code):
        self.lang, self.name, self.attrs, self.line, self.code = lang, name, attrs, line, code


def parse(path, strict_lang=None):
    """The marked samples of the file, in order; with strict_lang, unmarked blocks of that
    language are reported as errors."""
    lines = open(path, encoding="utf-8").read().split("\n")
    samples, errors, counts = [], [], {}
    pending = None  # (lang, attrs, line) of a marker waiting for its fence, or "fragment"
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            attrs = dict(kv.split("=", 1) for kv in m.group(2).split())
            pending = (m.group(1), attrs, i + 1)
            i += 1
            continue
        if FRAGMENT.match(line):
            pending = "fragment"
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            indent, fence, info = f.group(1), f.group(2), f.group(3).lower()
            info = FENCE_ALIASES.get(info, info)
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            if j == len(lines):
                errors.append(f"{path}:{i + 1}: unterminated code block")
            if isinstance(pending, tuple):
                lang, attrs, at = pending
                counts[lang] = counts.get(lang, 0) + 1
                name = attrs.pop("name", f"{lang}_{counts[lang]}")
                if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                    errors.append(f"{path}:{at}: bad sample name {name!r}")
                samples.append(Sample(lang, name, attrs, i + 1, "\n".join(body) + "\n"))
            elif pending is None and strict_lang and info == strict_lang:
                errors.append(f"{path}:{i + 1}: a {info} block with neither <!-- test: {info} --> "
                              "nor <!-- fragment --> before it")
            pending = None
            i = j + 1
            continue
        if line.strip():
            pending = None  # a marker applies to the very next block only
        i += 1
    names = [(s.lang, s.name) for s in samples]
    for lang, n in set(names):
        if names.count((lang, n)) > 1:
            errors.append(f"{path}: two {lang} samples named {n}")
    return samples, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["extract", "list"])
    ap.add_argument("markdown")
    ap.add_argument("--lang")
    ap.add_argument("--out")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    samples, errors = parse(a.markdown, a.lang if a.strict else None)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    chosen = [s for s in samples if a.lang in (None, s.lang)]
    if a.command == "list":
        for s in chosen:
            print(f"{s.lang}\t{s.name}\t{s.line}")
        return 0
    if not a.lang or not a.out:
        ap.error("extract needs --lang and --out")
    if not chosen:
        print(f"{a.markdown}: no sample marked <!-- test: {a.lang} -->", file=sys.stderr)
        return 1
    os.makedirs(a.out, exist_ok=True)
    ext = EXTENSIONS.get(a.lang, a.lang)
    for s in chosen:
        path = os.path.join(a.out, f"{s.name}.{ext}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(s.code)
        attrs = " ".join(f"{k}={v}" for k, v in s.attrs.items())
        print(f"{s.name}\t{os.path.abspath(path)}\t{attrs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
