"""Change a fraction of a benchmark collection the way a bad job would, with the official client.

Usage: python bench/damage.py URL NAME FRACTION
Of the collection's records (ids from bench/seed.py, `rec-NNNNNNNNN`), FRACTION (e.g. 0.01) are
touched, spread evenly over the collection: a third deleted, a third with their metadata changed
(`score` set to -1.0, the `verified` key removed: `update` with a None value, 1.x), and as many
foreign records added (`bad-NNNNNNNNN`, copies of existing embeddings). Prints one JSON line:
{"records": N, "deleted": d, "changed": c, "added": a, "seconds": s}.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from _client import connect  # noqa: E402


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    url, name, fraction = sys.argv[1], sys.argv[2], float(sys.argv[3])
    col = connect(url).get_collection(name, embedding_function=None)
    n = col.count()
    third = max(1, round(n * fraction / 3))
    step = max(1, n // (3 * third))
    picked = [f"rec-{i:09d}" for i in range(0, n, step)][: 3 * third]
    deleted, changed, source = picked[0::3], picked[1::3], picked[2::3]
    t0 = time.monotonic()
    for i in range(0, len(deleted), 1000):
        col.delete(ids=deleted[i:i + 1000])
    for i in range(0, len(changed), 1000):
        ids = changed[i:i + 1000]
        col.update(ids=ids, metadatas=[{"score": -1.0, "verified": None} for _ in ids])
    for i in range(0, len(source), 1000):
        got = col.get(ids=source[i:i + 1000], include=["embeddings"])
        col.add(ids=[f"bad-{x[4:]}" for x in got["ids"]], embeddings=[list(map(float, e)) for e in got["embeddings"]])
    print(json.dumps({"records": n, "deleted": len(deleted), "changed": len(changed), "added": len(source),
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
