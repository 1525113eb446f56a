"""Dump one ChromaDB collection as canonical, exact JSON lines, using the official Python client.

Why: chroma-snap's round-trip tests compare what a server holds before an export with what
another server holds after a load. Reading both sides with Chroma's own client, and printing
every value exactly (float32 bits, float64 as float.hex(), ints vs floats vs bools kept apart),
turns that comparison into a plain text diff that does not depend on chroma-snap's own code.

Usage (run with the python of a venv made by `bin/chroma-server setup`; works with the
chromadb 1.5.9 and 0.4.24 clients):
    python tests/py/dump_collection.py URL NAME
Output, one JSON object per line (keys sorted, non-ASCII kept as UTF-8):
    {"collection": NAME, "count": N, "metadata": <collection metadata as the client returns it>,
     "space": "l2"|"cosine"|"ip"}
    then one line per record, sorted by id (code point order, which is also UTF-8 byte order):
    {"id": ..., "embedding_f32_hex": ["3dcccccd", ...] | null, "document": str|null,
     "uri": str|null, "metadata": {key: {"type": "int"|"float"|"bool"|"str"|"list", "value": ...}}|null}
Floats are float.hex() strings; list elements are typed like scalars. "space" is the 1.x
configuration's hnsw/spann space, else metadata["hnsw:space"], else "l2".
Exits non-zero if paging does not return exactly count() distinct ids.
Set CHROMA_TOKEN to send `Authorization: Bearer <token>` (0.4.24 servers started with --token).
"""

import json
import math
import struct
import sys

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
from _client import connect  # noqa: E402

PAGE = 1000  # unbounded get fails above ~32k rows ("too many SQL variables")


def f32_hex(v):
    """Big-endian float32 bits of v. The server stores float32; 0.x may still hold a wider
    value in its write buffer, which is rounded here the way the server will round it."""
    v = float(v)
    try:
        return struct.pack(">f", v).hex()
    except OverflowError:  # beyond float32 range: rounds to infinity
        return struct.pack(">f", math.copysign(math.inf, v)).hex()


def typed(value):
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": value.hex()}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, (list, tuple)):
        return {"type": "list", "value": [typed(v) for v in value]}
    if value is None:
        return {"type": "null", "value": None}
    return {"type": type(value).__name__, "value": repr(value)}  # e.g. 1.x sparse vectors


def space_of(collection):
    config = getattr(collection, "configuration_json", None)  # 1.x only
    if isinstance(config, dict):
        for index in ("hnsw", "spann"):
            section = config.get(index)
            if isinstance(section, dict) and section.get("space"):
                return section["space"]
    metadata = collection.metadata or {}
    return metadata.get("hnsw:space", "l2")


def fetch_all(collection):
    include = ["embeddings", "documents", "metadatas", "uris"]
    try:
        collection.get(limit=1, include=include)
    except Exception:  # a client or server without uris
        include = ["embeddings", "documents", "metadatas"]
    rows = []
    offset = 0
    while True:
        page = collection.get(limit=PAGE, offset=offset, include=include)
        ids = page["ids"]
        n = len(ids)
        for key in ("embeddings", "documents", "metadatas", "uris"):
            values = page.get(key)
            if key in include and (values is None or len(values) != n):
                sys.exit(f"get returned {n} ids but {0 if values is None else len(values)} {key}")
        embeddings = page.get("embeddings")
        documents = page.get("documents")
        metadatas = page.get("metadatas")
        uris = page.get("uris") if "uris" in include else None
        for i, id_ in enumerate(ids):
            emb = embeddings[i] if embeddings is not None else None
            meta = metadatas[i] if metadatas is not None else None
            rows.append({
                "id": id_,
                "embedding_f32_hex": None if emb is None else [f32_hex(v) for v in emb],
                "document": documents[i] if documents is not None else None,
                "uri": uris[i] if uris is not None else None,
                "metadata": None if meta is None else {k: typed(v) for k, v in meta.items()},
            })
        if n < PAGE:
            return rows
        offset += n


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    client = connect(argv[1])
    collection = client.get_collection(argv[2], embedding_function=None)
    count = collection.count()
    rows = fetch_all(collection)
    if len({r["id"] for r in rows}) != len(rows) or len(rows) != count:
        sys.exit(f"paged get returned {len(rows)} rows ({len({r['id'] for r in rows})} distinct)"
                 f" but count() is {count}")
    rows.sort(key=lambda r: r["id"])
    out = sys.stdout
    out.reconfigure(encoding="utf-8")

    def emit(obj):
        out.write(json.dumps(obj, ensure_ascii=False, sort_keys=True, allow_nan=False))
        out.write("\n")

    emit({"collection": collection.name, "count": count, "metadata": collection.metadata,
          "space": space_of(collection)})
    for row in rows:
        emit(row)


if __name__ == "__main__":
    main(sys.argv)
