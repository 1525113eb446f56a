"""The load ceiling: the best a 1.x server does with raw, pre-encoded base64 `add` requests and a
few writers in flight, with nothing else on the client side.

Usage: python bench/raw_add.py SNAPSHOT URL COLLECTION TARGET WORKDIR [--writers K] [--batch N]
                               [--server-pid PID]
Reads collection COLLECTION of the snapshot with pyarrow and writes every `add` body to WORKDIR
first (untimed), in the shape chroma-snap's load sends (src/load/body.rs): ids, embeddings as
one standard-base64 string of little-endian float32 bytes each, documents, metadatas (the
snapshot's metadata JSON as is; `{}` as null). Then creates TARGET (the snapshot's distance space)
on the v2 server at URL and times K threads (default 3) that take the next body file, read it and
POST it, until all are sent (every answer must be 2xx). With --server-pid, also reports the CPU
seconds the server's process group used during the timed part. Prints one JSON line:
    {"records": n, "batch": N, "writers": K, "seconds": s, "rate": r, "server_cpu_s": c}
"""

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_cpu import group_cpu_seconds  # noqa: E402

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import headers, host_port  # noqa: E402

BASE = "/api/v2/tenants/default_tenant/databases/default_database"


def encode_bodies(snapshot, collection, batch, workdir):
    m = json.load(open(os.path.join(snapshot, "manifest.json")))
    entry = next((c for c in m["collections"] if c["name"] == collection), None)
    if entry is None:
        sys.exit(f"raw_add: no collection {collection!r} in {snapshot}")
    os.makedirs(workdir, exist_ok=True)
    files, n = [], 0

    def flush(ids, embs, docs, metas):
        body = bytearray(b'{"ids":')
        body += json.dumps(ids).encode()
        body += b',"embeddings":['
        body += b",".join(b'"' + base64.b64encode(e.tobytes()) + b'"' for e in embs)
        body += b'],"documents":'
        body += json.dumps(docs).encode()
        body += b',"metadatas":['
        body += b",".join(b"null" if s is None or s == "{}" else s.encode() for s in metas)
        body += b"]}"
        path = os.path.join(workdir, f"body-{len(files):06d}.json")
        with open(path, "wb") as f:
            f.write(body)
        files.append(path)

    pending = ([], [], [], [])
    for part in entry["parts"]:
        t = pq.read_table(os.path.join(snapshot, part["path"]), columns=["id", "embedding", "document", "metadata"])
        dim = t.schema.field("embedding").type.list_size
        emb = t.column("embedding").combine_chunks().values.to_numpy(zero_copy_only=False)
        emb = emb.astype("<f4", copy=False).reshape(-1, dim)
        cols = [t.column("id").to_pylist(), emb, t.column("document").to_pylist(), t.column("metadata").to_pylist()]
        i = 0
        while i < t.num_rows:
            take = min(batch - len(pending[0]), t.num_rows - i)
            for lst, col in zip(pending, cols):
                lst.extend(col[i:i + take])
            i += take
            n += take
            if len(pending[0]) == batch:
                flush(*pending)
                pending = ([], [], [], [])
    if pending[0]:
        flush(*pending)
    return entry, files, n


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    for name in ("snapshot", "url", "collection", "target", "workdir"):
        ap.add_argument(name)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--server-pid", type=int)
    a = ap.parse_args()
    entry, files, n = encode_bodies(a.snapshot, a.collection, a.batch, a.workdir)

    host, port = host_port(a.url)
    conn = http.client.HTTPConnection(host, port, timeout=600)
    body = json.dumps({"name": a.target, "configuration": {"hnsw": {"space": entry["space"]}}})
    conn.request("POST", f"{BASE}/collections", body=body, headers=headers("application/json"))
    r = conn.getresponse()
    created = r.read()
    if r.status != 200:
        sys.exit(f"raw_add: creating {a.target!r} answered {r.status}: {created[:300]!r}")
    path = f"{BASE}/collections/{json.loads(created)['id']}/add"

    todo = iter(files)
    lock = threading.Lock()
    errors = []

    def writer():
        c = http.client.HTTPConnection(host, port, timeout=600)
        while not errors:
            with lock:
                f = next(todo, None)
            if f is None:
                return
            with open(f, "rb") as fh:
                data = fh.read()
            c.request("POST", path, body=data, headers=headers("application/json"))
            r = c.getresponse()
            answer = r.read()
            if not 200 <= r.status < 300:
                errors.append(f"{f}: {r.status} {answer[:300]!r}")

    cpu0 = group_cpu_seconds(a.server_pid) if a.server_pid else None
    started = time.monotonic()
    threads = [threading.Thread(target=writer) for _ in range(a.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - started
    cpu = round(group_cpu_seconds(a.server_pid) - cpu0, 2) if a.server_pid else None
    if errors:
        sys.exit("raw_add: the server refused a batch: " + errors[0])
    print(json.dumps({"records": n, "batch": a.batch, "writers": a.writers, "seconds": round(secs, 3),
                      "rate": round(n / secs, 1), "server_cpu_s": cpu}))


if __name__ == "__main__":
    main()
