"""Seed collections for selective-export tests, and list the ids a filter selects, using the
official Python client.

Why: `export --where` must hold exactly the records Chroma's own client returns for
`get(where=..., where_document=...)`. Seeding and asking with Chroma's client keeps the expected
answer independent of chroma-snap's code.

Usage (run with the python of a venv made by `bin/chroma-server setup`; works with the
chromadb 1.5.9 and 0.4.24 clients):
    python tests/py/selective.py seed URL PREFIX
        creates PREFIX_alpha_docs, PREFIX_alpha_faq, PREFIX_alpha_tmp and PREFIX_beta_docs, 60
        records each (4-dim embeddings; metadata source in web/pdf/chat, n int, score float,
        draft bool; documents about apples or pears); prints {name: count} as JSON
    python tests/py/selective.py ids URL NAME WHERE_JSON WHERE_DOCUMENT_JSON
        prints the sorted ids `get(where=..., where_document=...)` returns, one JSON list
        (pass `null` for a filter that is not used)
    python tests/py/selective.py add URL NAME ID SOURCE
        adds one record (document "record ID about apples", n 1000) with metadata source SOURCE
"""

import json
import sys

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
from _client import connect  # noqa: E402

SOURCES = ["web", "pdf", "chat"]


def seed(url, prefix):
    client = connect(url)
    out = {}
    for suffix in ["alpha_docs", "alpha_faq", "alpha_tmp", "beta_docs"]:
        name = f"{prefix}_{suffix}"
        c = client.create_collection(name, embedding_function=None)
        n = 60
        ids = [f"{suffix}-{i:03d}" for i in range(n)]
        embeddings = [[float(i), float(i % 7), 0.5, -1.0] for i in range(n)]
        metadatas = [
            {"source": SOURCES[i % 3], "n": i, "score": i / 8, "draft": i % 5 == 0}
            for i in range(n)
        ]
        documents = [f"record {i} about {'apples' if i % 4 == 0 else 'pears'}" for i in range(n)]
        c.add(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents)
        out[name] = c.count()
    print(json.dumps(out))


def ids(url, name, where, where_document):
    c = connect(url).get_collection(name, embedding_function=None)
    got = c.get(where=json.loads(where), where_document=json.loads(where_document), include=[])
    print(json.dumps(sorted(got["ids"])))


def add(url, name, rid, source):
    c = connect(url).get_collection(name, embedding_function=None)
    meta = {"source": source, "n": 1000, "score": 0.5, "draft": False}
    c.add(ids=[rid], embeddings=[[9.0, 9.0, 9.0, 9.0]], metadatas=[meta], documents=[f"record {rid} about apples"])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "ids":
        ids(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "add":
        add(*sys.argv[2:])
    else:
        sys.exit(__doc__)
