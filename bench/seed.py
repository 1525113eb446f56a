"""Seed a ChromaDB server with N synthetic records for benchmarks, with the official client.

Usage: python bench/seed.py URL NAME N DIM [--docs]
Records: unit-norm DIM-dim float32 embeddings (seeded numpy), 8 metadata keys (str/int/float/bool),
and with --docs a ~300-character document each. Batches of the server's max_batch_size (≤ 5,000).
Prints one JSON line: {"records": N, "seconds": s, "rate": r}.
"""

import json
import os
import sys
import time

import numpy as np

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import connect, max_batch_size  # noqa: E402

WORDS = ("the collection vector migration chunk server record snapshot parquet distance cosine "
         "humor rhetoric corpus personality de la que el en y los se del las un por con").split()


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    url, name, n, dim = argv[1], argv[2], int(argv[3]), int(argv[4])
    docs = "--docs" in argv[5:]
    client = connect(url)
    col = client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    batch = min(max_batch_size(client), 5000)
    rng = np.random.default_rng(7)
    started = time.monotonic()
    for start in range(0, n, batch):
        m = min(batch, n - start)
        emb = rng.standard_normal((m, dim), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        ids = [f"rec-{i:09d}" for i in range(start, start + m)]
        metas = [{"source": f"file_{i % 300}.txt", "chunk": i, "page": i % 400, "score": (i % 1000) / 1000 + 0.0005,
                  "lang": "es" if i % 3 else "en", "author": f"a{i % 50}", "verified": i % 2 == 0, "tag": f"t{i % 12}"}
                 for i in range(start, start + m)]
        kwargs = {"ids": ids, "embeddings": emb, "metadatas": metas}
        if docs:
            kwargs["documents"] = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(60))[:300]
                                   for i in range(start, start + m)]
        col.add(**kwargs)
    secs = time.monotonic() - started
    print(json.dumps({"records": n, "seconds": round(secs, 2), "rate": round(n / secs, 1)}))


if __name__ == "__main__":
    main(sys.argv)
