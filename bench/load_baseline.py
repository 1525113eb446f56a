"""Time the official Python client adding N realistic records to a ChromaDB server, per batch size.

Why: chroma-snap's load must be measured against the obvious alternative, a Python script that
adds records with Chroma's own client. This script is that alternative, at each batch size asked
for, on identical data, so bin/bench-load can put both figures side by side.

Usage (python of a venv made by `bin/chroma-server setup`, chromadb 1.5.9 client):
    python bench/load_baseline.py URL PREFIX N DIM BATCH [BATCH...]
Creates collection PREFIX_b<BATCH> (cosine) per batch size and adds the same N records to each:
DIM-dim float32 embeddings (seeded), a ~300-character document and 8 metadata keys (str, int,
float, bool). Prints one JSON line per batch size on stdout:
    {"collection": ..., "batch": B, "records": N, "seconds": s, "rate": records_per_second}
Existing collections are an error, never reused.
"""

import json
import random
import struct
import sys
import time
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings

WORDS = ("vector migration snapshot parquet chroma index cosine record batch journal "
         "resume verify server client embedding document metadata").split()


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def records(n, dim):
    rng = random.Random(20240601)
    ids, embs, docs, metas = [], [], [], []
    for i in range(n):
        ids.append(f"rec-{i:07d}")
        embs.append([f32(rng.gauss(0.0, 1.0)) for _ in range(dim)])
        words = []
        while sum(len(w) + 1 for w in words) < 300:
            words.append(rng.choice(WORDS))
        docs.append(" ".join(words))
        metas.append({
            "source": rng.choice(["web", "pdf", "mail"]), "lang": "en", "title": f"doc {i}",
            "page": i % 500, "chunk": i, "score": rng.random(), "weight": rng.uniform(-5, 5),
            "public": i % 2 == 0,
        })
    return ids, embs, docs, metas


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    url, prefix, n, dim = argv[1], argv[2], int(argv[3]), int(argv[4])
    batches = [int(b) for b in argv[5:]]
    u = urlparse(url)
    client = chromadb.HttpClient(host=u.hostname, port=u.port, settings=Settings(anonymized_telemetry=False))
    ids, embs, docs, metas = records(n, dim)
    for b in batches:
        col = client.create_collection(f"{prefix}_b{b}", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        started = time.monotonic()
        for s in range(0, n, b):
            col.add(ids=ids[s:s + b], embeddings=embs[s:s + b], documents=docs[s:s + b], metadatas=metas[s:s + b])
        secs = time.monotonic() - started
        print(json.dumps({"collection": col.name, "batch": b, "records": n, "seconds": round(secs, 2),
                          "rate": round(n / secs, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
