#!/usr/bin/env python3
"""Self and inclusive time per symbol for one thread name, from `perf script`.

  perf record -F 4000 --call-graph fp -o perf.data -- node bench/threads.js <port> native 64 100000
  python3 bench/perf-agg.py perf.data tokio 40 80      # the tokio worker
  python3 bench/perf-agg.py perf.data "node " 40 80    # the JS thread

(`perf report` sorts oddly on this machine's mixed JIT/native stacks; this does not.)
For call stacks through the addon, build it with frame pointers and symbols into a
separate target dir and load it with NAPI_RS_NATIVE_LIBRARY_PATH (see bench/README.md).
"""
import collections
import subprocess
import sys

data, comm = sys.argv[1], sys.argv[2]
n_self = int(sys.argv[3]) if len(sys.argv) > 3 else 40
n_incl = int(sys.argv[4]) if len(sys.argv) > 4 else 0
out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"], capture_output=True, text=True).stdout
self_c, incl = collections.Counter(), collections.Counter()
total = every = 0
for block in out.split("\n\n"):
    lines = [l for l in block.split("\n") if l.strip()]
    if not lines:
        continue
    every += 1
    if comm not in lines[0]:
        continue
    total += 1
    frames = [(l.strip().split(None, 1) + ["?"])[1][:150] for l in lines[1:]]
    if frames:
        self_c[frames[0]] += 1
    for f in set(frames):
        incl[f] += 1
print(f"{comm!r}: {total} of {every} samples ({100 * total / max(every, 1):.1f}%)")
print("-- self")
for s, c in self_c.most_common(n_self):
    print(f"{100 * c / total:6.2f}% {s}")
if n_incl:
    print("-- inclusive")
    for s, c in incl.most_common(n_incl):
        print(f"{100 * c / total:6.2f}% {s}")
