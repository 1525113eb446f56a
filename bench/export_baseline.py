"""The export a user would write with the official Python client: page get(include=[embeddings,
documents, metadatas]) and write every record out as JSON lines.

Usage: python bench/export_baseline.py URL NAME OUT_FILE [PAGE]
Prints one JSON line: {"records": n, "seconds": s, "rate": r}.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep tests/py free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import connect  # noqa: E402


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    url, name, out = argv[1], argv[2], argv[3]
    page = int(argv[4]) if len(argv) > 4 else 1000
    client = connect(url)
    col = client.get_collection(name, embedding_function=None)
    started = time.monotonic()
    n = 0
    with open(out, "w") as f:
        offset = 0
        while True:
            got = col.get(limit=page, offset=offset, include=["embeddings", "documents", "metadatas"])
            ids = got["ids"]
            for i, id_ in enumerate(ids):
                f.write(json.dumps({"id": id_, "embedding": [float(x) for x in got["embeddings"][i]],
                                    "document": got["documents"][i], "metadata": got["metadatas"][i]}))
                f.write("\n")
            n += len(ids)
            offset += len(ids)
            if len(ids) < page:
                break
    secs = time.monotonic() - started
    print(json.dumps({"records": n, "seconds": round(secs, 2), "rate": round(n / secs, 1)}))


if __name__ == "__main__":
    main(sys.argv)
