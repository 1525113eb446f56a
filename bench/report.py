"""Markdown report of a bin/bench run: machine, command, one results table, the targets.

Usage: python bench/report.py RESULTS.jsonl META.json (--out FILE | --doc FILE)
  --out FILE   write the generated section alone to FILE
  --doc FILE   replace what lies between `<!-- bench:begin -->` and `<!-- bench:end -->` in FILE
               (the markers must be there; everything else in FILE is kept)
RESULTS holds one JSON object per line, written by bench/row.py: size, step (export, transform,
load), tool, role (tool = chroma-snap, baseline = the Python client, ceiling = raw server figure
or plain Parquet copy), records, seconds, rate, rss_mb, client_cpu_s, server_cpu_s,
bytes_per_record, and for the export's snapshot its size against the floor (bench/snapshot_size.py).
"""

import argparse
import json
import os
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
STEPS = ["export", "transform", "load"]
ROLES = ["tool", "baseline", "ceiling"]

# The targets (2-core machine).
EXPORT_VS_PY, EXPORT_VS_CEIL = 1.5, 0.8
LOAD_VS_PY, LOAD_VS_CEIL = 1.25, 0.9
TRANSFORM_RATE, TRANSFORM_TIME, TRANSFORM_TRUSTED_TIME = 100_000, 1.5, 1.3
RSS_MB, FLAT, SNAPSHOT = 200, 1.25, 1.1


def n0(x):
    return "—" if x is None else f"{x:,.0f}"


def yes(ok):
    return "yes" if ok else "**no**"


def f2(x):
    return "—" if x is None else f"{x:,.2f}"


def targets_table(acc):
    """The "### Targets" table of (label, measured, ok) rows."""
    return ["### Targets", "", "| target | measured | met? |", "|---|---|---|"] + [
        f"| {label} | {v} | {yes(ok)} |" for label, v, ok in acc]


def missed_list(acc):
    """The closing "Missed targets" list of (label, measured, ok) rows ("- none" when all met)."""
    missed = [f"- {label}: measured {v}." for label, v, ok in acc if not ok]
    return ["", "Missed targets in this run:", ""] + (missed or ["- none"])


def machine(m):
    """The run's command, machine and software, as Markdown bullets (every generated section)."""
    return "\n".join([
        f"- **Command:** `{m['command']}` ({m['seconds'] // 60} min {m['seconds'] % 60} s in all), {m['date']}",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; {m['os']}, Linux {m['kernel']}; "
        f"load average {m['load_start']} at the start, {m['load_end']} at the end "
        "(client and servers share the cores)",
        f"- **Software:** chroma-snap {m['revision']} built by {m['rustc']}; ChromaDB {m['chromadb']} server "
        f"and Python client (Python {m['python']}, pyarrow {m['pyarrow']})",
    ])


def splice(doc, begin, end, section):
    """Replaces what lies between the markers `begin` and `end` of file `doc` by `section` (which
    carries the markers itself); the rest of the file is kept. Exits if the markers are not there
    exactly once each, in order."""
    text = open(doc).read()
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        sys.exit(f"{os.path.basename(sys.argv[0])}: {doc} needs exactly one {begin} … {end} pair")
    head, rest = text.split(begin)
    tail = rest.split(end, 1)[1]
    with open(doc, "w") as f:
        f.write(head + section.rstrip("\n") + tail)


class Report:
    def __init__(self, rows, meta):
        self.rows = sorted(rows, key=lambda r: (r["size"], STEPS.index(r["step"]), ROLES.index(r["role"])))
        self.meta = meta
        self.cores = meta.get("cores") or 2

    def group(self, r, role):
        return [x for x in self.rows if x["size"] == r["size"] and x["step"] == r["step"] and x["role"] == role]

    def baseline(self, r):
        g = self.group(r, "baseline")
        return g[0] if g else None

    def ceiling(self, r):
        g = self.group(r, "ceiling")
        return max(g, key=lambda x: x["rate"]) if g else None

    def busy(self, r):
        """How busy client + server kept the cores during the step, and what that says."""
        cpu, srv = r.get("client_cpu_s") or 0, r.get("server_cpu_s")
        used = (cpu + (srv or 0)) / (self.cores * r["seconds"])
        who = f"client {cpu:.1f}" + (f" + server {srv:.1f}" if srv is not None else "")
        text = f"{who} CPU-s in {r['seconds']:.1f} s wall ({used:.0%} of {self.cores} cores)"
        if used >= 0.8:
            return text + ": the cores are saturated"
        return (text + ": the cores were not saturated by this step, so other work on the machine (load average "
                f"{self.meta.get('load_start', '?')} at the start) or waiting took the rest; a quiet rerun decides")

    def per_1k(self, r):
        s = r.get("server_cpu_s")
        return None if s is None else s / r["records"] * 1000

    def checks(self, r):
        """(label, ok, measured, why-if-missed) for every target that applies to row r."""
        if r["role"] != "tool":
            return []
        out, base, ceil = [], self.baseline(r), self.ceiling(r)
        rate = r["rate"]
        if r["step"] == "export":
            if base:
                v = rate / base["rate"]
                why = self.busy(r)
                if ceil and ceil["rate"] < EXPORT_VS_PY * base["rate"]:
                    why = (f"out of reach here: the raw ceiling itself is {ceil['rate'] / base['rate']:.2f}× the "
                           "Python client; only a faster server would allow it")
                out.append((f"≥{EXPORT_VS_PY}× Python", v >= EXPORT_VS_PY, f"{v:.2f}×", why))
            if ceil:
                v = rate / ceil["rate"]
                why = self.busy(r)
                if why.endswith("saturated"):
                    why += ("; the client's parsing competes with the server for the same cores: it would take "
                            "less client CPU per record or a core of its own")
                out.append((f"≥{EXPORT_VS_CEIL:.0%} of ceiling", v >= EXPORT_VS_CEIL, f"{v:.0%}", why))
            s = r.get("snapshot")
            if s and s.get("ratio") is not None:
                out.append((f"snapshot ≤{SNAPSHOT}× floor", s["ratio"] <= SNAPSHOT, f"{s['ratio']:.2f}×",
                            f"{s['bytes'] / s['records']:,.0f} bytes/record against {s['reference'] / s['records']:,.0f} "
                            "(raw float32 + zstd-1 text)"))
        elif r["step"] == "load":
            if base:
                v = rate / base["rate"]
                why = self.busy(r)
                if ceil and ceil["rate"] < LOAD_VS_PY * base["rate"]:
                    a, b = self.per_1k(r), self.per_1k(base)
                    cpu = (f" (server CPU per 1,000 records: {a:.2f} s under chroma-snap, {b:.2f} s under Python)"
                           if a is not None and b is not None else "")
                    why = (f"out of reach here: the best raw writer reaches {ceil['rate']:,.0f} rec/s, only "
                           f"{ceil['rate'] / base['rate']:.2f}× the Python client: the server's write path is the "
                           f"limit{cpu}; only a faster server would allow it")
                out.append((f"≥{LOAD_VS_PY}× Python", v >= LOAD_VS_PY, f"{v:.2f}×", why))
            if ceil:
                v = rate / ceil["rate"]
                why = self.busy(r)
                if "read-back" in r["tool"]:
                    nv = [x for x in self.group(r, "tool") if "no-verify" in x["tool"]]
                    if nv and nv[0]["rate"] >= LOAD_VS_CEIL * ceil["rate"]:
                        why = (f"the wall time includes reading every record back and comparing it; without it "
                               f"(--no-verify) the load is at {nv[0]['rate'] / ceil['rate']:.0%} of the ceiling")
                out.append((f"≥{LOAD_VS_CEIL:.0%} of ceiling", v >= LOAD_VS_CEIL, f"{v:.0%}", why))
        elif r["step"] == "transform":
            out.append((f"≥{TRANSFORM_RATE:,} rec/s", rate >= TRANSFORM_RATE, f"{rate:,.0f}",
                        (f"the plain Parquet copy of the same data runs at {ceil['rate']:,.0f} rec/s here"
                         + (", itself below the target: no transform that reads and writes these files reaches it "
                            f"on this machine ({self.cores} cores); it would take more cores"
                            if ceil["rate"] < TRANSFORM_RATE else "")) if ceil else ""))
            if ceil:
                v = ceil["rate"] / rate
                limit = TRANSFORM_TRUSTED_TIME if "trust" in r["tool"] else TRANSFORM_TIME
                out.append((f"≤{limit}× Parquet copy time", v <= limit, f"{v:.2f}×",
                            "on top of the copy: every metadata map parsed, mapped, validated and re-serialised, "
                            "every output record and file hashed"
                            + ("" if "trust" in r["tool"] else ", and every input record and file hashed (the "
                               "input check, in the same pass)")
                            + " (the transform notes in docs/performance.md say what it would take)"))
        if r.get("rss_mb") is not None:
            out.append((f"RSS <{RSS_MB} MB", r["rss_mb"] < RSS_MB, f"{r['rss_mb']:.0f} MB",
                        "see the memory notes in docs/performance.md"))
        return out

    def flatness(self):
        """(tool, small size, rss, big size, rss, ratio, ok) per chroma-snap tool run at ≥2 sizes."""
        out = []
        tools = [r for r in self.rows if r["role"] == "tool" and r.get("rss_mb")]
        for name in dict.fromkeys(r["tool"] for r in tools):
            runs = sorted((r for r in tools if r["tool"] == name), key=lambda r: r["size"])
            if len(runs) >= 2:
                a, b = runs[0], runs[-1]
                v = b["rss_mb"] / a["rss_mb"]
                out.append((name, a, b, v, v <= FLAT))
        return out

    def machine(self):
        return machine(self.meta)

    def render(self):
        lines = [BEGIN, "", "## Side by side: `bin/bench`", "",
                 "Generated by `bin/bench` (bench/report.py); rerun it rather than editing this section.", "",
                 self.machine(), "",
                 "Data: the Python client's records (bench/load_baseline.py): 768-dim float32 embeddings, a "
                 "~300-character document and 8 metadata keys (str, int, float, bool) each. `transform` runs "
                 "`fixtures/specs/four-collections.toml` on a `legacy-fixture --records N` snapshot (768 dims, "
                 "~250-character documents, ~12 metadata keys, 8 source collections). Each load writes into a "
                 "fresh, empty 1.5.9 server.", "",
                 "- records/s = records / wall seconds. Python load: its `add` calls only; chroma-snap: the whole "
                 "command (opening and checking the snapshot, creating the collection, the journal, and for the "
                 "default load the read-back check). Ceilings: raw HTTP with the body read and thrown away "
                 "(export: the export's own id-list and get-by-id requests; load: pre-encoded base64 `add` "
                 "bodies); transform: a plain Parquet read+write with the snapshot writer's settings.",
                 "- peak RSS and client CPU: `/usr/bin/time -v` of the client process; server CPU: the server "
                 "process group's user+system seconds during the step.",
                 "- output bytes/record: the snapshot (export, transform), the JSON-lines file (Python export), "
                 "the JSON answers (raw get), the Parquet files (copy).",
                 "- vs baseline / vs ceiling: records/s over the Python client's / over the best ceiling row's.",
                 "",
                 "| size | step | tool | records | records/s | wall s | peak RSS MB | client CPU s | server CPU s "
                 "| output bytes/record | vs baseline | vs ceiling | targets met? |",
                 "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        missed = []
        for r in self.rows:
            base, ceil = self.baseline(r), self.ceiling(r)
            bpr = r.get("bytes_per_record")
            if bpr is None and r.get("response_bytes"):
                bpr = r["response_bytes"] / r["records"]
            vb = f"{r['rate'] / base['rate']:.2f}×" if base and r["role"] == "tool" else "—"
            vc = f"{r['rate'] / ceil['rate']:.2f}×" if ceil and r["role"] != "ceiling" else "—"
            checks = self.checks(r)
            met = "; ".join(f"{label}: {yes(ok)} ({v})" for label, ok, v, _ in checks) or "—"
            missed += [(r, label, v, why) for label, ok, v, why in checks if not ok]
            cpu = lambda k: "—" if r.get(k) is None else f"{r[k]:.1f}"  # noqa: E731
            lines.append(f"| {r['size']:,} | {r['step']} | {r['tool']} | {r['records']:,} | {n0(r['rate'])} "
                         f"| {r['seconds']:.2f} | {n0(r.get('rss_mb'))} | {cpu('client_cpu_s')} | {cpu('server_cpu_s')} "
                         f"| {n0(bpr)} | {vb} | {vc} | {met} |")

        snaps = [r for r in self.rows if r.get("snapshot")]
        if snaps:
            lines += ["", "Snapshot size (export) against its floor: raw float32 embedding bytes plus the text "
                      "(ids, documents, metadata JSON) compressed with zstd level 1 (pyarrow's zstd, one stream "
                      f"per column); target ≤{SNAPSHOT}×.", "",
                      "| size | snapshot bytes/record | raw float32 bytes/record | text bytes/record | "
                      "text zstd-1 bytes/record | snapshot / floor | met? |",
                      "|---:|---:|---:|---:|---:|---:|---|"]
            for r in snaps:
                s, k = r["snapshot"], r["snapshot"]["records"]
                lines.append(f"| {r['size']:,} | {s['bytes'] / k:,.0f} | {s['embedding_bytes'] / k:,.0f} "
                             f"| {s['text_bytes'] / k:,.0f} | {s['text_zstd1_bytes'] / k:,.0f} | {s['ratio']:.2f}× "
                             f"| {yes(s['ratio'] <= SNAPSHOT)} |")

        flat = self.flatness()
        lines += ["", f"Memory flatness: peak RSS at the largest size within {FLAT - 1:.0%} of the smallest.", ""]
        if flat:
            lines += ["| tool | smallest size | peak RSS MB | largest size | peak RSS MB | ratio | met? |",
                      "|---|---:|---:|---:|---:|---:|---|"]
            for name, a, b, v, ok in flat:
                lines.append(f"| {name} | {a['size']:,} | {a['rss_mb']:.0f} | {b['size']:,} | {b['rss_mb']:.0f} "
                             f"| {v:.2f}× | {yes(ok)} |")
                if not ok:
                    missed.append((b, f"RSS within {FLAT - 1:.0%} of size {a['size']:,}", f"{v:.2f}×",
                                   "see the memory notes in docs/performance.md"))
        else:
            lines.append("(one size only: not measured in this run)")

        lines += ["", "Missed targets in this run, with what the run itself says about why:", ""]
        if missed:
            lines += [f"- size {r['size']:,}, {r['tool']}: {label} — measured {v}; {why}." for r, label, v, why in missed]
        else:
            lines.append("- none")
        lines += ["", END]
        return "\n".join(lines) + "\n"


def run(name, render, begin, end):
    """The command line both reports share: RESULTS META (--out FILE | --doc FILE); `render` turns
    the rows and the run's metadata into the section written between `begin` and `end`."""
    ap = argparse.ArgumentParser(usage=sys.modules["__main__"].__doc__)
    ap.add_argument("results")
    ap.add_argument("meta")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--out")
    where.add_argument("--doc")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    if not rows:
        sys.exit(f"{name}: no results")
    section = render(rows, json.load(open(a.meta)))
    if a.out:
        with open(a.out, "w") as f:
            f.write(section)
        return
    splice(a.doc, begin, end, section)


def main():
    run("report.py", lambda rows, meta: Report(rows, meta).render(), BEGIN, END)


if __name__ == "__main__":
    main()
