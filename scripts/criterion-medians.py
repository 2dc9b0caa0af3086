#!/usr/bin/env python3
"""Prints criterion's median and mean for every benchmark of the last `cargo bench` run."""
import json
import os
import sys

root_dir = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
for root, _dirs, files in sorted(os.walk(root_dir)):
    if os.path.basename(root) == "new" and "estimates.json" in files:
        with open(os.path.join(root, "estimates.json")) as f:
            e = json.load(f)
        name = os.path.relpath(os.path.dirname(root), root_dir)
        print(f"{name}: median {e['median']['point_estimate']:.1f} ns, mean {e['mean']['point_estimate']:.1f} ns")
