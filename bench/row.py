"""Append one result row of bin/bench to a JSON-lines file (read by bench/report.py).

Usage: python bench/row.py RESULTS --size N --step STEP --tool TOOL --role ROLE
           (--records N | --records-json FILE:PATH...) (--seconds S | --seconds-json FILE:PATH)
           [--time TIMEFILE]... [--server-cpu BEFORE AFTER] [--bytes B] [--extra-json KEY=FILE[:PATH]]...
           [--note TEXT]
ROLE is tool (chroma-snap), baseline (the Python client) or ceiling (raw server figure, plain
Parquet copy). PATH is a dotted path into the JSON document of FILE, e.g. `runs.1.seconds`.
TIMEFILE is the stderr of `/usr/bin/time -v`: peak RSS and the client's CPU seconds come from it.
A step run as several processes at once (`load --shard`) gives one --records-json and one --time
per process: the records are summed, the peak RSS is the largest, the CPU seconds are summed.
"""

import argparse
import json
import re
import sys


def pick(spec):
    file, _, path = spec.partition(":")
    with open(file) as f:
        text = f.read().strip()
    try:
        v = json.loads(text)
    except json.JSONDecodeError:  # several JSON lines: the last one
        v = json.loads(text.splitlines()[-1])
    for key in filter(None, path.split(".")):
        v = v[int(key)] if isinstance(v, list) else v[key]
    return v


def time_v(path):
    text = open(path).read()

    def field(label):
        m = re.search(rf"^\s*{re.escape(label)}: (.*)$", text, re.M)
        if not m:
            sys.exit(f"row.py: no '{label}' in {path} (not /usr/bin/time -v output?)")
        return m.group(1)

    return {"rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
            "client_cpu_s": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 2)}


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("results")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--step", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--role", choices=["tool", "baseline", "ceiling"], required=True)
    ap.add_argument("--records", type=int)
    ap.add_argument("--records-json", action="append")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--seconds-json")
    ap.add_argument("--time", action="append", default=[])
    ap.add_argument("--server-cpu", nargs=2, type=float)
    ap.add_argument("--bytes", type=int)
    ap.add_argument("--extra-json", action="append", default=[])
    ap.add_argument("--note")
    a = ap.parse_args()
    records = a.records if a.records is not None else sum(pick(spec) for spec in a.records_json or [])
    seconds = a.seconds if a.seconds is not None else pick(a.seconds_json)
    if not records or not seconds or records <= 0 or seconds <= 0:
        sys.exit(f"row.py: {a.step}/{a.tool}: no positive records ({records}) and seconds ({seconds})")
    row = {"size": a.size, "step": a.step, "tool": a.tool, "role": a.role, "records": int(records),
           "seconds": round(float(seconds), 3), "rate": round(records / seconds, 1),
           "rss_mb": None, "client_cpu_s": None, "server_cpu_s": None, "bytes_per_record": None}
    if a.time:
        runs = [time_v(t) for t in a.time]
        row["rss_mb"] = max(r["rss_mb"] for r in runs)
        row["client_cpu_s"] = round(sum(r["client_cpu_s"] for r in runs), 2)
        if len(runs) > 1:
            row["processes"] = len(runs)
    if a.server_cpu:
        row["server_cpu_s"] = round(a.server_cpu[1] - a.server_cpu[0], 2)
    if a.bytes is not None:
        row["bytes_per_record"] = round(a.bytes / records, 1)
    for spec in a.extra_json:
        key, _, src = spec.partition("=")
        row[key] = pick(src)
    if a.note:
        row["note"] = a.note
    with open(a.results, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
