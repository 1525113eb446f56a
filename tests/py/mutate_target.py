"""Damage a loaded target the way a bad job would, using the official Python client.

Why: `chroma-snap diff` and `load --if-exists sync` must find and undo changes made by someone
else's code, so the changes are made with Chroma's own client, not with chroma-snap.

Usage (run with the python of a venv made by `bin/chroma-server setup`; works with the
chromadb 1.5.9 and 0.4.24 clients):
    python tests/py/mutate_target.py URL DOCS GONE STRAY [--delete N] [--meta N] [--foreign N]
In collection DOCS (whose ids are r000000, r000001, ...): delete N records (r000003 on, every
third id; default 2), remove the metadata key "s" of N records (r000010 on, every third id;
default 1), change the document of r000020 and one embedding value of r000030, add N foreign
records (foreign-0 ...; default 2), and replace DOCS's collection metadata ("purpose" changed).
Then delete collection GONE and create collection STRAY
with 3 records. Removing a key: `update` with a None value on 1.x; 0.4.x cannot remove
a key through its client (it refuses None), so the update is sent over HTTP (its server
removes a key given a null value). Deleting a record and adding it back is not an option there:
0.4.24 then fails every `get` with embeddings (IndexError) until its write batch is flushed.
Prints one JSON object: {"deleted": [...], "meta": [...], "document": id, "embedding": id,
"foreign": [...]}.
"""

import argparse
import json
import sys
import urllib.request

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
from _client import connect, headers, host_port  # noqa: E402


def remove_key(url, col, ids, key):
    try:
        col.update(ids=ids, metadatas=[{key: None} for _ in ids])
        return
    except Exception:  # the 0.4.x client refuses None values; its server takes them
        pass
    host, port = host_port(url)
    body = json.dumps({"ids": ids, "metadatas": [{key: None} for _ in ids]}).encode()
    req = urllib.request.Request(f"http://{host}:{port}/api/v1/collections/{col.id}/update", data=body,
                                 headers=headers("application/json"), method="POST")
    urllib.request.urlopen(req).read()
    after = col.get(ids=ids, include=["metadatas"])["metadatas"]
    assert all(key not in (m or {}) for m in after), after


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("url")
    ap.add_argument("docs")
    ap.add_argument("gone")
    ap.add_argument("stray")
    ap.add_argument("--delete", type=int, default=2)
    ap.add_argument("--meta", type=int, default=1)
    ap.add_argument("--foreign", type=int, default=2)
    a = ap.parse_args()
    client = connect(a.url)
    col = client.get_collection(a.docs, embedding_function=None)
    deleted = [f"r{n:06d}" for n in range(3, 3 * a.delete + 6, 3) if n != 30][: a.delete]
    meta = [f"r{10 + 3 * i + (1 if (10 + 3 * i) % 11 == 0 else 0):06d}" for i in range(a.meta)]
    assert not set(deleted) & set(meta), "the deleted and the changed ids overlap"
    if deleted:
        col.delete(ids=deleted)
    if meta:
        remove_key(a.url, col, meta, "s")
    # 0.4.x embeds documents sent without embeddings: send the record's own embedding along.
    doc_emb = [float(x) for x in col.get(ids=["r000020"], include=["embeddings"])["embeddings"][0]]
    col.update(ids=["r000020"], embeddings=[doc_emb], documents=["changed by a bad job"])
    emb = col.get(ids=["r000030"], include=["embeddings"])["embeddings"][0]
    emb = [float(x) for x in emb]
    emb[0] = emb[0] + 0.5
    col.update(ids=["r000030"], embeddings=[emb])
    foreign = [f"foreign-{i}" for i in range(a.foreign)]
    if foreign:
        dim = len(emb)
        col.add(ids=foreign, embeddings=[[0.25] * dim for _ in foreign], documents=["not ours"] * len(foreign))
    col.modify(metadata={"purpose": "changed by a bad job", "seed": 21})
    client.delete_collection(a.gone)
    stray = client.create_collection(a.stray, embedding_function=None)
    stray.add(ids=["s1", "s2", "s3"], embeddings=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    print(json.dumps({"deleted": deleted, "meta": meta, "document": "r000020", "embedding": "r000030",
                      "foreign": foreign}))


if __name__ == "__main__":
    main()
