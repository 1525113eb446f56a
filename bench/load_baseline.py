"""Time the official Python client adding N realistic records to a ChromaDB server, per batch size.

Why: chroma-snap's load must be measured against the obvious alternative, a Python script that
adds records with Chroma's own client. This script is that alternative, at each batch size asked
for, on identical data, so bin/bench and bin/bench-load can put both figures side by side.

Usage (python of a venv made by `bin/chroma-server setup`, chromadb 1.5.9 client):
    python bench/load_baseline.py URL PREFIX N DIM BATCH [BATCH...]
Creates collection PREFIX_b<BATCH> (cosine) per batch size and adds the same N records to each:
DIM-dim float32 embeddings (seeded numpy, standard normal), a ~300-character document and 8
metadata keys (str, int, float, bool). Records are generated one batch at a time, so memory does
not grow with N, and only the `add` calls are timed (generating the records is not). Prints one
JSON line per batch size on stdout:
    {"collection": ..., "batch": B, "records": N, "seconds": s, "rate": records_per_second}
Existing collections are an error, never reused.
"""

import json
import os
import random
import sys
import time

import numpy as np

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import connect  # noqa: E402

WORDS = ("vector migration snapshot parquet chroma index cosine record batch journal "
         "resume verify server client embedding document metadata").split()


def batches(n, dim, size):
    """The same N records, in batches of `size`, whatever `size` is (seeded per record block)."""
    rng = random.Random(20240601)
    emb_rng = np.random.default_rng(20240601)
    for start in range(0, n, size):
        m = min(size, n - start)
        ids, docs, metas = [], [], []
        for i in range(start, start + m):
            ids.append(f"rec-{i:07d}")
            words = []
            while sum(len(w) + 1 for w in words) < 300:
                words.append(rng.choice(WORDS))
            docs.append(" ".join(words))
            metas.append({
                "source": rng.choice(["web", "pdf", "mail"]), "lang": "en", "title": f"doc {i}",
                "page": i % 500, "chunk": i, "score": rng.random(), "weight": rng.uniform(-5, 5),
                "public": i % 2 == 0,
            })
        yield ids, emb_rng.standard_normal((m, dim), dtype=np.float32), docs, metas


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    url, prefix, n, dim = argv[1], argv[2], int(argv[3]), int(argv[4])
    sizes = [int(b) for b in argv[5:]]
    client = connect(url)
    for b in sizes:
        col = client.create_collection(f"{prefix}_b{b}", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        secs = 0.0
        for ids, embs, docs, metas in batches(n, dim, b):
            started = time.monotonic()
            col.add(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
            secs += time.monotonic() - started
        print(json.dumps({"collection": col.name, "batch": b, "records": n, "seconds": round(secs, 3),
                          "rate": round(n / secs, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
