#!/usr/bin/env python3
"""Reads `perf script` output (samples with call stacks) of one raftkv
process on stdin and counts them by layer: the raft loop and its storage
threads (by thread name), the peer transport and the client API (by the
functions on the stack), and what the stack does not tell apart (the
tokio runtime's polling and the kernel work it does for every socket)."""
import sys, collections
RULES = [
    ("peer transport", ("raft_transport::transport", "raft_transport::frame", "raft_transport::lane",
                        "raft_transport::limiter", "raft_proto::", "transport::stream_", "transport::sender",
                        "transport::receive", "transport::server")),
    ("client API", ("raftkv::http", "raft_transport::http_server", "raft_transport::conn")),
]
def classify(comm, frames):
    if comm.startswith("raft-g") or comm.startswith("raft-wal") or comm.startswith("raft-snap"):
        return "raft loop + storage threads"
    text = "\n".join(frames)
    for name, keys in RULES:
        if any(k in text for k in keys):
            return name
    if "hyper::" in text:
        return "hyper (unattributed)"
    return "tokio/kernel (unattributed)"
counts = collections.Counter()
comm, frames = None, []
def flush():
    if comm is not None:
        counts[classify(comm, frames)] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); comm, frames = None, []
        continue
    if not line.startswith((" ", "\t")):
        comm = line.split()[0]
        frames = []
    else:
        frames.append(line.strip())
flush()
total = sum(counts.values())
for k, v in counts.most_common():
    print(f"{k:32s} {v:7d} {100*v/total:6.1f}%")
print(f"{'total':32s} {total:7d}")
