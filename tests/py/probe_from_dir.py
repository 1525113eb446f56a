"""Where each vector of an HTTP export sits in a stopped server's data directory (research aid for
docs/from-dir.md; not used by the tests).

Usage (the 1.5.9 venv's python: it has numpy and pyarrow):
    python tests/py/probe_from_dir.py DATA_DIR HTTP_SNAPSHOT COLLECTION
For each record of COLLECTION in the HTTP snapshot it finds the vector in the saved index
(`stored x length.bin` for cosine) or in the last vector-carrying log row after the index's
position, and counts how the exported value compares: equal to the index value, to the logged
value unchanged, or to the logged value through hnswlib's cosine round trip (divide by the
float32 length, multiply back). The pickle is read with a restricted unpickler that builds no
object of any class.
"""

import json
import pickle
import sqlite3
import struct
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


class _Obj:
    pass


class _Restricted(pickle.Unpickler):
    def find_class(self, module, name):  # every class becomes an inert placeholder
        return _Obj


def round_trip(x):
    s = np.float32(0)
    for a in x:
        s = np.float32(s + np.float32(a * a))
    length = np.float32(np.sqrt(s))
    inv = np.float32(np.float32(1.0) / np.float32(length + np.float32(1e-30)))
    return ((x * inv).astype("<f4") * length).astype("<f4")


def main(data, snap, name):
    db = sqlite3.connect(f"file:{data}/chroma.sqlite3?mode=ro&immutable=1", uri=True)
    cid = db.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()[0]
    seg = db.execute("SELECT id FROM segments WHERE collection = ? AND scope = 'VECTOR'", (cid,)).fetchone()[0]
    try:
        with open(f"{data}/{seg}/index_metadata.pickle", "rb") as f:
            m = _Restricted(f).load()
        m = m if isinstance(m, dict) else m.__dict__
    except FileNotFoundError:
        m = {"id_to_label": {}, "max_seq_id": None}
    row = db.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (seg,)).fetchone()
    pos = row[0] if row else m.get("max_seq_id") or 0
    pos = int.from_bytes(pos, "big") if isinstance(pos, bytes) else pos
    manifest = json.load(open(f"{snap}/manifest.json"))
    entry = [c for c in manifest["collections"] if c["name"] == name][0]
    cosine = entry["space"] == "cosine"
    index = {}
    if m["id_to_label"]:
        hdr = open(f"{data}/{seg}/header.bin", "rb").read()
        _, _, _, count, size, label_off, data_off = struct.unpack_from("<iQQQQQQ", hdr, 0)
        raw = open(f"{data}/{seg}/data_level0.bin", "rb").read()
        lengths = np.frombuffer(open(f"{data}/{seg}/length.bin", "rb").read(), dtype="<f4")
        label_to_id = {v: k for k, v in m["id_to_label"].items()}
        dim = (label_off - data_off) // 4
        for i in range(count):
            b = raw[i * size : (i + 1) * size]
            ident = label_to_id.get(struct.unpack_from("<Q", b, label_off)[0])
            if ident is None or b[2] & 1:
                continue
            v = np.frombuffer(b[data_off : data_off + 4 * dim], dtype="<f4")
            index[ident] = (v * lengths[i]).astype("<f4") if cosine else v
    log = {}
    for ident, vec in db.execute(
        "SELECT id, vector FROM embeddings_queue WHERE topic LIKE ? AND seq_id > ? ORDER BY seq_id",
        ("%/" + cid, pos),
    ):
        if vec is not None:
            log[ident] = np.frombuffer(vec, dtype="<f4")
    parts = [pq.read_table(f"{snap}/{p['path']}") for p in entry["parts"]]
    table = pa.concat_tables(parts).to_pylist() if parts else []
    counts = {"index": 0, "log_unchanged": 0, "log_round_trip": 0, "other": 0}
    for r in table:
        got = np.array(r["embedding"], dtype="<f4").view("u4")
        ident = r["id"]
        if ident in log and np.array_equal(got, log[ident].view("u4")):
            counts["log_unchanged"] += 1
        elif ident in log and np.array_equal(got, round_trip(log[ident]).view("u4")):
            counts["log_round_trip"] += 1
        elif ident in index and np.array_equal(got, index[ident].view("u4")):
            counts["index"] += 1
        else:
            counts["other"] += 1
    print(json.dumps({"collection": name, "position": pos, "indexed": len(index), "log_ids": len(log), **counts}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
