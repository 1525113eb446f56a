"""Run every ```sql and ```python block of Markdown documents, from the current directory.

Why: the inspect documents promise queries and snippets that really run; this runs them against
a real snapshot (the test links it as ./snap). SQL blocks run in DuckDB one by one and must
return rows; Python blocks of one document run in order in one namespace.

Usage: python tests/py/run_doc_blocks.py DOC.md [DOC.md ...]
Prints one line per block; exits non-zero on the first failure, naming the document and block.
"""

import re
import sys

import duckdb


def main(docs):
    for doc in docs:
        text = open(doc, encoding="utf-8").read()
        blocks = re.findall(r"```(sql|python)\n(.*?)```", text, re.S)
        if not blocks:
            sys.exit(f"{doc}: no sql or python blocks")
        namespace = {}
        for n, (lang, code) in enumerate(blocks, 1):
            where = f"{doc} block {n} ({lang})"
            if lang == "sql":
                rows = duckdb.sql(code).fetchall()
                if not rows:
                    sys.exit(f"{where}: returned no rows:\n{code}")
                print(f"{where}: {len(rows)} rows")
            else:
                exec(compile(code, where, "exec"), namespace)
                print(f"{where}: ran")


if __name__ == "__main__":
    main(sys.argv[1:])
