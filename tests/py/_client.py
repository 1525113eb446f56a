"""Shared connection code for every Python helper (tests/py and bench/; works with the chromadb
1.5.9 and 0.4.24 clients).

Why: the helpers must all connect the same way: to an http://127.0.0.1:PORT URL, without
telemetry, and with a bearer token when the server requires one (CHROMA_TOKEN in the
environment; 0.4.24 servers started with `bin/chroma-server start --token T`). The official
client goes through `connect`; the raw-HTTP benchmarks (bench/raw_*.py) through `host_port` and
`headers`. bench/ scripts import this file with `sys.path.insert(0, <repo>/tests/py)`.
"""

import os
import sys
from urllib.parse import urlparse


def host_port(url):
    """(host, port) of an http://HOST:PORT URL; exits with a usage message otherwise."""
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        sys.exit(f"expected URL like http://127.0.0.1:PORT, got {url!r}")
    return u.hostname, u.port


def headers(content_type=None):
    """Request headers: `Authorization: Bearer $CHROMA_TOKEN` when set, and a Content-Type."""
    out = {}
    token = os.environ.get("CHROMA_TOKEN")
    if token:
        out["Authorization"] = f"Bearer {token}"
    if content_type:
        out["Content-Type"] = content_type
    return out


def connect(url):
    """The official client for `url` (v1 API on 0.4.x, v2 on 1.x), telemetry off."""
    import chromadb
    from chromadb.config import Settings

    host, port = host_port(url)
    return chromadb.HttpClient(
        host=host,
        port=port,
        headers=headers() or None,
        settings=Settings(anonymized_telemetry=False),
    )


def max_batch_size(client):
    """The server's largest accepted batch (the method's name differs between 1.x and 0.4.x)."""
    if hasattr(client, "get_max_batch_size"):
        return client.get_max_batch_size()
    return client.max_batch_size  # 0.4.x
