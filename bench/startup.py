#!/usr/bin/env python3
"""Median wall time of short commands (start-up cost), RUNS runs each, alternating.

Usage: python3 bench/startup.py RUNS -- CMD... [--- CMD...]
Prints one line per command: median ms, and the ratio to the first command.
"""
import subprocess, sys, time

args = sys.argv[1:]
runs = int(args[0])
commands, current = [], []
for token in args[2:]:
    if token == "---":
        commands.append(current)
        current = []
    else:
        current.append(token)
commands.append(current)
times = [[] for _ in commands]
for _ in range(runs):
    for i, command in enumerate(commands):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times[i].append(time.perf_counter() - start)
medians = [sorted(t)[len(t) // 2] * 1e3 for t in times]
for command, median in zip(commands, medians):
    print(f"{median:8.2f} ms  {median / medians[0]:6.2f}x  {' '.join(command)[:90]}")
