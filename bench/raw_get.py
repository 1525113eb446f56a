"""The export ceiling: the server's own time for the requests `chroma-snap export` makes, with no
parsing on the client side.

Usage: python bench/raw_get.py URL COLLECTION [--page N] [--concurrency C] [--server-pid PID]
Does what the export does on a 1.x (v2) server, over plain http.client with one keep-alive
connection per request in flight: lists the ids (`get` with `include: []`, pages of the server's
max_batch_size capped at 10,000), then fetches the records by id in pages of N (default 1,000,
the export's default) with `include: [embeddings, documents, metadatas, uris]`. Answer bodies are
read in full and thrown away; only the id lists are parsed (to know what to ask for). Run twice:
one request in flight, then C (default 3, the export's default). With --server-pid, each run
also reports the CPU seconds the server's process group used. Prints one JSON line:
    {"records": n, "page": N, "runs": [{"in_flight": 1, "seconds": s, "bytes": b, "server_cpu_s": c}, ...]}
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_cpu import group_cpu_seconds  # noqa: E402

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import headers, host_port  # noqa: E402

BASE = "/api/v2/tenants/default_tenant/databases/default_database"


class Conn:
    """One keep-alive HTTP connection per thread."""

    local = threading.local()

    def __init__(self, host, port):
        self.host, self.port = host, port

    def request(self, method, path, body=None):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection(self.host, self.port, timeout=600)
        c.request(method, path, body=body, headers=headers("application/json"))
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"raw_get: {method} {path} answered {r.status}: {data[:300]!r}")
        return data


def run(conn, cid, max_batch, page, in_flight):
    started = time.monotonic()
    get = f"{BASE}/collections/{cid}/get"
    ids, id_page = [], min(max_batch, 10_000)
    while True:
        got = json.loads(conn.request("POST", get, json.dumps({"include": [], "limit": id_page, "offset": len(ids)})))
        ids.extend(got["ids"])
        if len(got["ids"]) < id_page:
            break
    bodies = [json.dumps({"ids": ids[s:s + page], "include": ["embeddings", "documents", "metadatas", "uris"]})
              for s in range(0, len(ids), page)]
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        total = sum(pool.map(lambda b: len(conn.request("POST", get, b)), bodies))
    return len(ids), {"in_flight": in_flight, "seconds": round(time.monotonic() - started, 4), "bytes": total}


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("collection")
    ap.add_argument("--page", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=3)
    ap.add_argument("--server-pid", type=int)
    a = ap.parse_args()
    host, port = host_port(a.url)
    conn = Conn(host, port)
    cid = json.loads(conn.request("GET", f"{BASE}/collections/{a.collection}"))["id"]
    max_batch = json.loads(conn.request("GET", "/api/v2/pre-flight-checks")).get("max_batch_size") or 10_000
    page = max(1, min(a.page, max_batch))
    runs = []
    for k in (1, a.concurrency):
        cpu0 = group_cpu_seconds(a.server_pid) if a.server_pid else None
        n, r = run(conn, cid, max_batch, page, k)
        r["server_cpu_s"] = round(group_cpu_seconds(a.server_pid) - cpu0, 2) if a.server_pid else None
        runs.append(r)
    print(json.dumps({"records": n, "page": page, "runs": runs}))


if __name__ == "__main__":
    main()
