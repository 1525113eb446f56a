"""Seed a ChromaDB server with collections full of edge cases, using the official Python client.

Why: chroma-snap's tests must show that an export -> load round trip keeps everything a real
server holds: unicode ids and documents, null fields, every metadata type and its extreme values,
array metadata (chromadb >= 1.5), uris, a ~1 MB document, 3/768/1536-dim embeddings with extreme
float32 values, the distance space and collection metadata. Writing them with Chroma's own client
(not with chroma-snap) keeps the test data independent of the code under test.

Usage (run with the python of a venv made by `bin/chroma-server setup`; works with the
chromadb 1.5.9 and 0.4.24 clients):
    python tests/py/seed_edge_cases.py URL PREFIX            # the edge-case collections
    python tests/py/seed_edge_cases.py URL PREFIX --big N    # one collection PREFIX_big, N records
URL is http://127.0.0.1:PORT. Collections are named PREFIX_<suffix> (names must stay within
0.4.24's rules: 3-63 chars of [a-zA-Z0-9_-]). Existing collections are an error, never reused.
Prints a JSON object {collection_name: count} on stdout. Data is deterministic for a given client
version (embeddings come from seeded `random.Random`, rounded to float32).
Set CHROMA_TOKEN to send `Authorization: Bearer <token>` (0.4.24 servers started with --token).
"""

import json
import random
import re
import struct
import sys
import time

import chromadb

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
from _client import connect, max_batch_size  # noqa: E402

CLIENT_VERSION = tuple(int(x) for x in chromadb.__version__.split(".")[:2])
HAS_ARRAYS = CLIENT_VERSION >= (1, 5)  # array-valued metadata exists since chromadb 1.5
USES_CONFIGURATION = CLIENT_VERSION >= (1, 0)  # 1.x keeps the space in `configuration`


def f32(x):
    """The float32 nearest to x, as a Python float (exactly representable, so it survives JSON)."""
    return struct.unpack(">f", struct.pack(">f", x))[0]


def f32_bits(hex_bits):
    return struct.unpack(">f", bytes.fromhex(hex_bits))[0]


# Extreme float32 values; l2/ip collections keep them bit-exact (cosine normalises, so not there).
SPECIAL_F32 = [
    f32_bits("00000001"),  # 1e-45, smallest subnormal
    f32_bits("80000001"),  # -1e-45
    f32_bits("00000010"),  # tiny subnormal
    f32_bits("007fffff"),  # largest subnormal
    f32_bits("00800000"),  # smallest normal, 1.1754944e-38
    f32_bits("7f7fffff"),  # 3.4028235e38, largest finite
    f32_bits("ff7fffff"),  # -3.4028235e38
    -0.0,
    0.0,
    f32(0.1),
    f32(1.0 / 3.0),
]


def random_embedding(rng, dim):
    return [f32(rng.uniform(-1.0, 1.0)) for _ in range(dim)]


def create(client, name, space="l2", metadata=None):
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_-]{1,61}[a-zA-Z0-9]", name):
        sys.exit(f"collection name {name!r} breaks 0.4.24's rules (3-63 chars [a-zA-Z0-9_-])")
    if USES_CONFIGURATION:
        return client.create_collection(
            name,
            metadata=metadata,
            configuration={"hnsw": {"space": space}},
            embedding_function=None,
        )
    meta = dict(metadata or {})
    meta["hnsw:space"] = space
    return client.create_collection(name, metadata=meta, embedding_function=None)


def add_records(collection, records, batch):
    """records: dicts with id, embedding and optional document/metadata/uri (missing = null)."""
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        kwargs = {
            "ids": [r["id"] for r in chunk],
            "embeddings": [r["embedding"] for r in chunk],
        }
        for field, arg in (("document", "documents"), ("metadata", "metadatas"), ("uri", "uris")):
            values = [r.get(field) for r in chunk]
            if any(v is not None for v in values):
                kwargs[arg] = values
        collection.add(**kwargs)


UNICODE_STRINGS = [
    "plain-ascii",
    "🦀",
    "emoji 😀🎉 and a flag 🇺🇦",
    "👩‍👩‍👧‍👦 family (ZWJ sequence)",
    "数据库 中文 测试",
    "データベース",
    "한국어 텍스트",
    "שלום עולם",
    "مرحبا بالعالم",
    "mixed RTL: abc אבג def",
    "e\u0301 (decomposed e + combining acute)",
    "\u00e9 (precomposed e acute)",
    "Z\u0351\u0364\u036b\u0317a\u0354\u035el\u0336g\u0358o\u034f",
    "\u212b angstrom sign vs \u00c5",
    "zero\u200bwidth\u200dspace",
    "\ufeffBOM at start",
    "\u200fRTL mark",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral \U0010fffd",
    "  leading and trailing spaces  ",
    "tab\there",
    "new\nline\r\nCRLF",
    'quote " and \' and \\ backslash',
    "<script>alert('x')</script> & %20 ../etc/passwd",
    "control \x01\x1f\x7f chars",
    "null",
]


def seed_unicode(client, name, batch):
    rng = random.Random(1)
    col = create(
        client,
        name,
        "l2",
        {"owner": "seed", "purpose": "unicode ✓ 中文", "n": 7, "ratio": 0.25, "flag": True},
    )
    records = []
    for i, s in enumerate(UNICODE_STRINGS):
        rec = {"id": s, "embedding": random_embedding(rng, 3)}
        if i % 4 != 1:
            rec["document"] = f"doc {i}: {s}"
        if i % 3 != 2:
            rec["metadata"] = {"text": s, "i": i, "ключ 🔑": "значение"}
        if i % 2 == 0:
            rec["uri"] = f"s3://bucket/ü/{i}?q={s[:8]}"
        records.append(rec)
    # Oddities around emptiness and length.
    records.append({"id": "x" * 300, "embedding": random_embedding(rng, 3), "document": ""})
    records.append({"id": "empty-strings", "embedding": random_embedding(rng, 3),
                    "document": "", "metadata": {"s": ""}, "uri": ""})
    records.append({"id": "all-null", "embedding": random_embedding(rng, 3)})
    records.append({"id": "1", "embedding": random_embedding(rng, 3), "document": "id is a number"})
    add_records(col, records, batch)
    return col


SCALARS = {
    "int_zero": 0,
    "int_one": 1,
    "int_minus_one": -1,
    "int_2_53_plus_1": 2**53 + 1,
    "int_2_62": 2**62,
    "int_min_plus_1": -(2**63) + 1,
    "int_max": 2**63 - 1,
    "float_0_1": 0.1,
    "float_1_0": 1.0,
    "float_zero": 0.0,
    "float_minus_zero": -0.0,
    "float_1e-300": 1e-300,
    "float_1e300": 1e300,
    "float_pi": 3.141592653589793,
    "float_min_subnormal": 5e-324,
    "float_max": 1.7976931348623157e308,
    "float_2_53_plus_2": float(2**53 + 2),
    "bool_true": True,
    "bool_false": False,
    "str_empty": "",
    "str_unicode": "ünïcödé 🦀 中文",
    "str_number_like": "1.0",
    "str_long": "long " * 2000,
}


def seed_scalars(client, name, batch):
    rng = random.Random(2)
    col = create(client, name, "l2")
    records = [
        # One record per value, so a rejected value would be obvious...
        {"id": f"one-{key}", "embedding": random_embedding(rng, 3), "metadata": {key: value}}
        for key, value in SCALARS.items()
    ]
    # ...and one holding them all, plus ints and floats that compare equal.
    everything = dict(SCALARS)
    everything.update({"same_int": 1, "same_float": 1.0, "same_bool": True})
    records.append({"id": "all-scalars", "embedding": random_embedding(rng, 3),
                    "metadata": everything, "document": "every scalar metadata type"})
    records.append({"id": "no-metadata", "embedding": random_embedding(rng, 3),
                    "document": "null metadata"})
    add_records(col, records, batch)
    return col


def seed_arrays(client, name, batch):
    rng = random.Random(3)
    col = create(client, name, "l2", {"owner": "seed", "kind": "arrays"})
    values = {
        "strs": ["a", "ü", "🦀", ""],
        "one_str": ["only"],
        "ints": [0, -1, 2**53 + 1, 2**62],
        "floats": [0.1, 1.0, -0.0, 1e-300, 1e300, 3.141592653589793],
        "bools": [True, False, True],
    }
    records = [
        {"id": f"arr-{key}", "embedding": random_embedding(rng, 3), "metadata": {key: value}}
        for key, value in values.items()
    ]
    mixed = dict(values)
    mixed.update({"scalar_int": 5, "scalar_float": 5.0, "scalar_str": "s"})
    records.append({"id": "arr-all", "embedding": random_embedding(rng, 3), "metadata": mixed,
                    "document": "all array types"})
    add_records(col, records, batch)
    return col


def seed_bigdoc(client, name, batch):
    rng = random.Random(4)
    col = create(client, name, "l2")
    chunk = "The quick brown fox 🦊 jumps over the lazy dog 犬. Ünïcödé. "
    big = chunk * (1_048_576 // len(chunk.encode("utf-8")))
    big += "x" * (1_048_576 - len(big.encode("utf-8")))  # exactly 1 MiB of UTF-8
    records = [
        {"id": "big-document", "embedding": random_embedding(rng, 3), "document": big,
         "metadata": {"bytes": len(big.encode("utf-8"))}},
        {"id": "small-1", "embedding": random_embedding(rng, 3), "document": "small"},
        {"id": "small-2", "embedding": random_embedding(rng, 3)},
    ]
    add_records(col, records, batch)
    return col


def seed_vectors(client, name, space, dim, count, seed, specials, batch, coll_meta=None):
    rng = random.Random(seed)
    col = create(client, name, space, coll_meta)
    records = []
    for i in range(count):
        emb = random_embedding(rng, dim)
        if specials and i < len(SPECIAL_F32):
            # Record i carries all the special values, rotated, at the start of its vector.
            for j, v in enumerate((SPECIAL_F32[i:] + SPECIAL_F32[:i])[:dim]):
                emb[j] = v
        rec = {"id": f"{space}-{dim}-{i:04d}", "embedding": emb}
        if i % 5 != 4:
            rec["document"] = f"record {i} of a {dim}-dim {space} collection"
        if i % 3 != 0:
            rec["metadata"] = {"i": i, "x": f32(rng.random()), "even": i % 2 == 0}
        if i % 7 == 0:
            rec["uri"] = f"https://example.com/{space}/{i}"
        records.append(rec)
    add_records(col, records, batch)
    return col


def seed_edge_cases(client, prefix):
    batch = min(max_batch_size(client), 100)
    cols = [
        seed_unicode(client, f"{prefix}_unicode", batch),
        seed_scalars(client, f"{prefix}_scalars", batch),
        seed_bigdoc(client, f"{prefix}_bigdoc", batch),
        seed_vectors(client, f"{prefix}_cos768", "cosine", 768, 60, 10, False, batch,
                     {"space_note": "cosine", "dim": 768}),
        seed_vectors(client, f"{prefix}_l2_1536", "l2", 1536, 40, 11, True, batch),
        seed_vectors(client, f"{prefix}_ip768", "ip", 768, 50, 12, True, batch,
                     {"space_note": "inner product"}),
        seed_vectors(client, f"{prefix}_l2_3", "l2", 3, 200, 13, True, batch),
    ]
    if HAS_ARRAYS:
        cols.append(seed_arrays(client, f"{prefix}_arrays", batch))
    cols.append(create(client, f"{prefix}_empty", "cosine", {"empty": True, "note": "no records"}))
    # An empty collection with neither metadata nor a non-default space.
    cols.append(create(client, f"{prefix}_bare", "l2"))
    return cols


def seed_big(client, prefix, n):
    """N records of 3-dim embeddings with short ids and int+float metadata, in max-size batches."""
    batch = max_batch_size(client)
    col = create(client, f"{prefix}_big", "l2")
    rng = random.Random(99)
    started = time.monotonic()
    for start in range(0, n, batch):
        end = min(start + batch, n)
        ids = [format(i, "x") for i in range(start, end)]
        embeddings = [[f32(rng.uniform(-1.0, 1.0)) for _ in range(3)] for _ in ids]
        metadatas = [{"i": i, "f": i / 8.0} for i in range(start, end)]
        col.add(ids=ids, embeddings=embeddings, metadatas=metadatas)
    elapsed = time.monotonic() - started
    print(f"seeded {n} records in {elapsed:.1f}s ({n / max(elapsed, 1e-9):.0f} rec/s, "
          f"batches of {batch}) with chromadb {chromadb.__version__}", file=sys.stderr)
    return [col]


def main(argv):
    if len(argv) == 3:
        big = None
    elif len(argv) == 5 and argv[3] == "--big" and argv[4].isdigit() and int(argv[4]) > 0:
        big = int(argv[4])
    else:
        sys.exit(__doc__)
    client = connect(argv[1])
    prefix = argv[2]
    cols = seed_big(client, prefix, big) if big else seed_edge_cases(client, prefix)
    counts = {c.name: c.count() for c in cols}
    json.dump(counts, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv)
