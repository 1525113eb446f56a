"""What listing a collection's ids costs, page by page, at growing offsets.

Usage: python bench/list_cost.py URL COLLECTION [--page N] [--repeat R] [--server-pid PID]
The export lists every id before it fetches records (`get` with `include: []`, `limit` = its
`--list-page`, 30,000 by default, `offset` growing by a page each time); a 1.x server
skips the rows before `offset` on every call, so a page's cost grows with its offset. This script
times that exact request, over plain http.client on one keep-alive connection, at offsets 0, 25%,
50% and 75% of the collection and at its last page, R times each (default 3, the median kept),
then the whole listing once, page after page, as the export does. --page N overrides the page
size. With --server-pid, the whole listing's server CPU seconds too. Prints one JSON line:
    {"records": n, "page": N, "points": [{"at": "0" | "25%" | "50%" | "75%" | "last", "offset": k,
                                          "ids": m, "seconds": s}, ...],
      "listing": {"pages": p, "ids": n, "seconds": s, "server_cpu_s": c}}
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_cpu import group_cpu_seconds  # noqa: E402

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import headers, host_port  # noqa: E402

BASE = "/api/v2/tenants/default_tenant/databases/default_database"


class Conn:
    def __init__(self, url):
        self.c = http.client.HTTPConnection(*host_port(url), timeout=600)

    def call(self, method, path, body=None):
        self.c.request(method, path, body=body, headers=headers("application/json"))
        r = self.c.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"list_cost: {method} {path} answered {r.status}: {data[:300]!r}")
        return json.loads(data)


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("collection")
    ap.add_argument("--page", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--server-pid", type=int)
    a = ap.parse_args()
    conn = Conn(a.url)
    cid = conn.call("GET", f"{BASE}/collections/{a.collection}")["id"]
    n = conn.call("GET", f"{BASE}/collections/{cid}/count")
    page = a.page or 30_000  # chroma-snap export's --list-page default
    get = f"{BASE}/collections/{cid}/get"

    def list_page(offset):
        started = time.monotonic()
        ids = conn.call("POST", get, json.dumps({"include": [], "limit": page, "offset": offset}))["ids"]
        return len(ids), time.monotonic() - started

    points = []
    for at, offset in [("0", 0), ("25%", n // 4), ("50%", n // 2), ("75%", 3 * n // 4), ("last", max(0, n - page))]:
        runs = [list_page(offset) for _ in range(max(1, a.repeat))]
        points.append({"at": at, "offset": offset, "ids": runs[0][0],
                       "seconds": round(statistics.median(s for _, s in runs), 4)})

    cpu0 = group_cpu_seconds(a.server_pid) if a.server_pid else None
    started, offset, pages = time.monotonic(), 0, 0
    while True:
        got, _ = list_page(offset)
        offset, pages = offset + got, pages + 1
        if got < page:
            break
    listing = {"pages": pages, "ids": offset, "seconds": round(time.monotonic() - started, 3),
               "server_cpu_s": round(group_cpu_seconds(a.server_pid) - cpu0, 2) if a.server_pid else None}
    print(json.dumps({"records": n, "page": page, "points": points, "listing": listing}))


if __name__ == "__main__":
    main()
