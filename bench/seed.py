"""Seed a ChromaDB server with N synthetic records for benchmarks, with the official client.

Usage: python bench/seed.py URL NAME N DIM [--docs] [--keys K] [--writers W] [--batch B]
Records: unit-norm DIM-dim float32 embeddings (numpy, seeded per batch, so the records are the
same whatever W is), K metadata keys (default 8, at most 8; the first four are one of each type:
`source` str, `chunk` int, `score` float, `verified` bool), and with --docs a ~300-character
document each. Batches of B records (default: the server's max_batch_size, at most 5,000), W
threads adding batches at once (default 1). Prints one JSON line:
{"records": N, "seconds": s, "rate": r, "writers": W, "batch": B}.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import connect, max_batch_size  # noqa: E402

WORDS = ("the collection vector migration chunk server record snapshot parquet distance cosine "
         "humor rhetoric corpus personality de la que el en y los se del las un por con").split()


def metadata(i, keys):
    m = {"source": f"file_{i % 300}.txt", "chunk": i, "score": (i % 1000) / 1000 + 0.0005, "verified": i % 2 == 0,
         "page": i % 400, "lang": "es" if i % 3 else "en", "author": f"a{i % 50}", "tag": f"t{i % 12}"}
    return dict(list(m.items())[:keys])


def records(start, m, dim, keys, docs):
    """Records start..start+m, the same for a given start whoever asks."""
    emb = np.random.default_rng([7, start]).standard_normal((m, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = {"ids": [f"rec-{i:09d}" for i in range(start, start + m)], "embeddings": emb,
           "metadatas": [metadata(i, keys) for i in range(start, start + m)]}
    if docs:
        out["documents"] = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(60))[:300]
                            for i in range(start, start + m)]
    return out


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("name")
    ap.add_argument("n", type=int)
    ap.add_argument("dim", type=int)
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--keys", type=int, default=8, choices=range(1, 9), metavar="K")
    ap.add_argument("--writers", type=int, default=1)
    ap.add_argument("--batch", type=int)
    a = ap.parse_args()
    client = connect(a.url)
    col = client.get_or_create_collection(a.name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    batch = a.batch or min(max_batch_size(client), 5000)

    def add(start):
        col.add(**records(start, min(batch, a.n - start), a.dim, a.keys, a.docs))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, a.writers)) as pool:
        for _ in pool.map(add, range(0, a.n, batch)):
            pass
    secs = time.monotonic() - started
    print(json.dumps({"records": a.n, "seconds": round(secs, 2), "rate": round(a.n / secs, 1), "writers": a.writers,
                      "batch": batch}))


if __name__ == "__main__":
    main()
