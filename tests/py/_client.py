"""Shared connection code for the tests/py helpers (works with the chromadb 1.5.9 and 0.4.24 clients).

Why: both helpers must connect the same way: to an http://127.0.0.1:PORT URL, without telemetry,
and with a bearer token when the server requires one (CHROMA_TOKEN in the environment; 0.4.24
servers started with `bin/chroma-server start --token T`).
"""

import os
import sys
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings


def connect(url):
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        sys.exit(f"expected URL like http://127.0.0.1:PORT, got {url!r}")
    token = os.environ.get("CHROMA_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return chromadb.HttpClient(
        host=u.hostname,
        port=u.port,
        headers=headers,
        settings=Settings(anonymized_telemetry=False),
    )


def max_batch_size(client):
    if hasattr(client, "get_max_batch_size"):
        return client.get_max_batch_size()
    return client.max_batch_size  # 0.4.x
