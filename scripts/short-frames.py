#!/usr/bin/env python3
"""Shortens folded stacks (inferno-collapse-perf output) for a readable flame graph:
every generic argument list is dropped from each frame's name, innermost first, so
`poll<actix_http::h1::dispatcher::Dispatcher<T, S, ...>>` reads `poll`, and stacks that
become the same are added together.

    short-frames.py < profile.folded > profile.short.folded
"""
import re
import sys

GENERICS = re.compile(r"<[^<>;]*>")
counts = {}
for line in sys.stdin:
    stack, _, n = line.rstrip("\n").rpartition(" ")
    if not stack or not n.isdigit():
        continue
    shorter = GENERICS.sub("", stack)
    while shorter != stack:
        stack, shorter = shorter, GENERICS.sub("", shorter)
    counts[stack] = counts.get(stack, 0) + int(n)
for stack, n in counts.items():
    print(f"{stack} {n}")
