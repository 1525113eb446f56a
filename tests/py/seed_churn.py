"""Seed collections whose last writes exist only in the write-ahead log, for `export --from-dir`.

Why: a stopped server's directory keeps records indexed at the last HNSW sync in the segment's
files and everything written after it only in the `embeddings_queue` table. This seeder writes
more records than one sync (default `sync_threshold` 1,000) into an l2 and a cosine collection,
then updates, upserts, deletes, re-adds a deleted id and changes metadata only; then adds 1,100
more (so another sync saves those changes into the index: elements marked deleted, vectors
replaced in place) and changes a few records again after that sync. A reader of the directory
must read the saved index and replay the log exactly as the server does. Written with Chroma's own client
(works with the chromadb 1.5.9 and 0.4.24 clients), independent of the code under test.

Usage: python tests/py/seed_churn.py URL PREFIX [N]   (N records added first, default 2,345;
1,098 more are left at the end)
Prints a JSON object {collection_name: count} on stdout. Deterministic for a given client version.
"""

import json
import random
import struct
import sys

import chromadb

sys.dont_write_bytecode = True
from _client import connect  # noqa: E402

USES_CONFIGURATION = tuple(int(x) for x in chromadb.__version__.split(".")[:2]) >= (1, 0)


def f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


def emb(rng, dim):
    return [f32(rng.uniform(-1.0, 1.0)) for _ in range(dim)]


def create(client, name, space):
    if USES_CONFIGURATION:
        return client.create_collection(
            name, configuration={"hnsw": {"space": space}}, embedding_function=None
        )
    return client.create_collection(name, metadata={"hnsw:space": space}, embedding_function=None)


def churn(client, name, space, dim, n, seed):
    rng = random.Random(seed)
    col = create(client, name, space)
    ids = [f"r{i:05d}" for i in range(n)]
    for start in range(0, n, 100):
        chunk = ids[start : start + 100]
        col.add(
            ids=chunk,
            embeddings=[emb(rng, dim) for _ in chunk],
            documents=[f"doc {i}" for i in chunk],
            metadatas=[{"i": int(i[1:]), "f": int(i[1:]) / 4.0} for i in chunk],
        )
    # After the last sync: updates of vectors, documents and metadata...
    upd = ids[-40:-10]
    col.update(
        ids=upd,
        embeddings=[emb(rng, dim) for _ in upd],
        documents=[f"updated {i}" for i in upd],
        metadatas=[{"updated": True} for _ in upd],
    )
    # ...a metadata-only update of records indexed long ago...
    old = ids[5:15]
    col.update(ids=old, metadatas=[{"touched": 1} for _ in old])
    # ...upserts of existing (old and recent) and of new ids...
    ups = ids[20:30] + ids[-8:] + [f"new{i:03d}" for i in range(20)]
    col.upsert(
        ids=ups,
        embeddings=[emb(rng, dim) for _ in ups],
        metadatas=[{"upserted": k} for k in range(len(ups))],
    )
    # ...deletes of old, updated and upserted records...
    col.delete(ids=ids[100:110] + upd[:5] + ["new000", "new001"] + ids[-3:])
    # ...an id deleted then added again with another vector (1.x only: 0.4.24's vector segment
    # ignores an add of an id deleted in its current batch, and its `get` of several ids then
    # fails with IndexError, so no HTTP export of that server could be compared)...
    if USES_CONFIGURATION:
        col.delete(ids=[ids[200]])
        col.add(ids=[ids[200]], embeddings=[emb(rng, dim)], documents=["re-added"])
    # ...and an add of an existing id, which changes nothing.
    col.add(ids=[ids[300]], embeddings=[emb(rng, dim)], documents=["ignored"])
    # More records than one sync, so the changes above reach the saved index...
    more = [f"m{i:05d}" for i in range(1100)]
    for start in range(0, len(more), 100):
        chunk = more[start : start + 100]
        col.add(ids=chunk, embeddings=[emb(rng, dim) for _ in chunk], documents=[f"m {i}" for i in chunk])
    # ...and a few changes after it, including to records the saved index holds.
    col.delete(ids=["m00001", "m00002", ids[400]])
    col.update(ids=["m00003", ids[401]], embeddings=[emb(rng, dim), emb(rng, dim)])
    col.upsert(ids=["z1"], embeddings=[emb(rng, dim)], metadatas=[{"z": True}])
    return col


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    n = int(argv[3]) if len(argv) == 4 else 2345
    client = connect(argv[1])
    prefix = argv[2]
    cols = [
        churn(client, f"{prefix}_churn_l2", "l2", 4, n, 21),
        churn(client, f"{prefix}_churn_cos", "cosine", 8, n, 22),
    ]
    json.dump({c.name: c.count() for c in cols}, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv)
