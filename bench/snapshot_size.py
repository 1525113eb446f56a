"""A snapshot's size against the floor it is held to: raw float32 embedding bytes plus the text
(ids, documents, metadata JSON) compressed with zstd level 1 (the snapshot's own codec, through
pyarrow's bundled zstd).

Usage: python bench/snapshot_size.py SNAPSHOT
Prints one JSON line: {"records", "bytes" (every file of the snapshot, manifest included),
"embedding_bytes" (records x dim x 4), "text_bytes", "text_zstd1_bytes", "reference"
(embedding_bytes + text_zstd1_bytes), "ratio" (bytes / reference)}.
Each text column is compressed as one stream (one per collection), values separated by newlines.
"""

import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main(snapshot):
    zstd = pa.Codec("zstd", compression_level=1)
    m = json.load(open(os.path.join(snapshot, "manifest.json")))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(snapshot) for f in fs
               if ".chroma-snap" not in os.path.relpath(d, snapshot).split(os.sep))
    records = emb = text = packed = 0
    for c in m["collections"]:
        cols = {"id": [], "document": [], "metadata": []}
        for part in c["parts"]:
            t = pq.read_table(os.path.join(snapshot, part["path"]), columns=["id", "embedding", "document", "metadata"])
            records += t.num_rows
            emb += t.num_rows * t.schema.field("embedding").type.list_size * 4
            for k in cols:
                cols[k].extend(v or "" for v in t.column(k).to_pylist())
        for values in cols.values():
            raw = "\n".join(values).encode()
            text += len(raw)
            packed += zstd.compress(raw, asbytes=True).__len__() if raw else 0
    ref = emb + packed
    print(json.dumps({"records": records, "bytes": size, "embedding_bytes": emb, "text_bytes": text,
                      "text_zstd1_bytes": packed, "reference": ref, "ratio": round(size / ref, 4) if ref else None}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
