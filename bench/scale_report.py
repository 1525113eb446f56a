"""Markdown report of `bin/bench --scale`: each step at every size side by side, judged against
issue 13's scale targets (memory flat from the smallest size to the largest and under 200 MB;
export rate kept), with the seed and the cost of listing ids.

Usage: python bench/scale_report.py RESULTS.jsonl META.json (--out FILE | --doc FILE)
  --out FILE   write the generated section alone to FILE
  --doc FILE   replace what lies between `<!-- scale:begin -->` and `<!-- scale:end -->` in FILE
               (the markers must be there; everything else in FILE, the bin/bench section
               included, is kept)
RESULTS holds the rows bench/row.py wrote (size, step, tool, records, seconds, rate, rss_mb,
client_cpu_s, server_cpu_s; the export row carries `list_cost` from bench/list_cost.py). META is
bin/bench's run description; its `notes` list steps that did not run and why.
"""

import sys

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
from report import f2, machine, missed_list, n0, run, targets_table, yes  # noqa: E402

BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
# Step key → what the table calls it, in the order the bench runs them.
STEPS = {
    "export": "`export`",
    "verify": "`verify` (offline)",
    "transform": "`transform` (fixtures/specs/scale-route.toml)",
    "load": "`load`, one process (read-back included)",
    "load-shards": "`load --shard I/3`, three processes at once",
    "verify-against": "`verify --against` the loaded server",
}
# Issue 13's acceptance: RSS at the largest size within 25% of the smallest and under 200 MB for
# every step above; export rate at the largest size at least 70% of the smallest.
FLAT, RSS_MB, EXPORT_KEPT = 1.25, 200, 0.70


def f1(x):
    return "—" if x is None else f"{x:,.1f}"


def ratio(a, b):
    return None if a in (None, 0) or b is None else b / a


def times(x):
    return "—" if x is None else f"{x:.2f}×"


class Scale:
    def __init__(self, rows, meta):
        self.rows, self.meta = rows, meta
        self.sizes = sorted({r["size"] for r in rows})

    def get(self, step, size):
        return next((r for r in self.rows if r["step"] == step and r["size"] == size), None)

    def ends(self, step):
        """The step's rows at the smallest and largest size (None where it did not run)."""
        return self.get(step, self.sizes[0]), self.get(step, self.sizes[-1])

    def acceptance(self):
        """(label, measured, ok) for every target; ok is None when the run cannot tell."""
        out = []
        two = len(self.sizes) > 1
        for step, name in STEPS.items():
            a, b = self.ends(step)
            if b is None or b.get("rss_mb") is None:
                continue
            peak = max(r["rss_mb"] for r in (a, b) if r)
            out.append((f"{name}: peak RSS <{RSS_MB} MB", f"{peak:,.0f} MB", peak < RSS_MB))
            if two and a and a.get("rss_mb"):
                v = b["rss_mb"] / a["rss_mb"]
                out.append((f"{name}: peak RSS at {b['size']:,} ≤{FLAT}× at {a['size']:,}",
                            f"{v:.2f}× ({a['rss_mb']:,.0f} → {b['rss_mb']:,.0f} MB)", v <= FLAT))
        a, b = self.ends("export")
        if two and a and b:
            v = b["rate"] / a["rate"]
            out.append((f"`export` rate at {b['size']:,} ≥{EXPORT_KEPT:.0%} of its rate at {a['size']:,}",
                        f"{v:.0%} ({a['rate']:,.0f} → {b['rate']:,.0f} records/s)", v >= EXPORT_KEPT))
        return out

    def step_table(self, step):
        rows = [self.get(step, s) for s in self.sizes]
        if not any(rows):
            return []
        first, last = rows[0], rows[-1]
        span = f"{self.sizes[-1]:,} / {self.sizes[0]:,}"
        head = "| | " + " | ".join(f"{s:,}" for s in self.sizes) + f" | {span} | target | met? |"
        out = [head, "|---|" + "---:|" * (len(self.sizes) + 1) + "---|---|"]

        def line(label, key, fmt, target="", judge=None):
            vals = [r.get(key) if r else None for r in rows]
            r = ratio(first.get(key) if first else None, last.get(key) if last else None)
            met = "—" if judge is None or r is None else yes(judge(r))
            out.append(f"| {label} | " + " | ".join(fmt(v) for v in vals) + f" | {times(r)} | {target or '—'} | {met} |")

        line("records", "records", n0)
        line("records/s", "rate", n0, *((f"≥{EXPORT_KEPT:.2f}×", lambda v: v >= EXPORT_KEPT) if step == "export" else ()))
        line("wall s", "seconds", f2)
        line("peak RSS MB", "rss_mb", n0, f"≤{FLAT}× and <{RSS_MB} MB",
             lambda v: v <= FLAT and all(r is None or (r.get("rss_mb") or 0) < RSS_MB for r in rows))
        line("client CPU s", "client_cpu_s", f2)
        line("server CPU s", "server_cpu_s", f2)
        return out

    def seed_table(self):
        seeds = [self.get("seed", s) for s in self.sizes]
        if not any(seeds):
            return []
        out = ["| size | records/s | wall s | client CPU s | server CPU s | server CPU ms per record |",
               "|---:|---:|---:|---:|---:|---:|"]
        for r in filter(None, seeds):
            per = None if r.get("server_cpu_s") is None else r["server_cpu_s"] / r["records"] * 1000
            out.append(f"| {r['size']:,} | {n0(r['rate'])} | {f1(r['seconds'])} | {f1(r.get('client_cpu_s'))} "
                       f"| {f1(r.get('server_cpu_s'))} | {'—' if per is None else f'{per:.2f}'} |")
        return out

    def list_table(self):
        costs = [(s, (self.get("export", s) or {}).get("list_cost")) for s in self.sizes]
        costs = [(s, c) for s, c in costs if c]
        if not costs:
            return []
        ats = ["0", "25%", "50%", "75%", "last"]
        out = ["| size | ids per page | " + " | ".join(f"ms per page at {a}" for a in ats)
               + " | whole listing: pages | s | server CPU s |",
               "|---:|---:|" + "---:|" * len(ats) + "---:|---:|---:|"]
        for s, c in costs:
            by = {p["at"]: p for p in c["points"]}
            ms = " | ".join(f"{by[a]['seconds'] * 1000:,.0f} (offset {by[a]['offset']:,})" if a in by else "—"
                            for a in ats)
            li = c["listing"]
            out.append(f"| {s:,} | {c['page']:,} | {ms} | {li['pages']} | {li['seconds']:.2f} "
                       f"| {f1(li.get('server_cpu_s'))} |")
        return out

    def render(self):
        m = self.meta
        lines = [BEGIN, "", "## At scale: `bin/bench --scale`", "",
                 "Generated by `bin/bench --scale` (bench/scale_report.py); rerun it rather than editing this "
                 "section.", "", machine(m), "",
                 f"Data: `bench/seed.py URL scale N {m.get('dim', 64)} --keys 4 --writers 2` (the official Python "
                 f"client) into a fresh 1.5.9 server: {m.get('dim', 64)}-dim float32 embeddings, 4 metadata keys "
                 "(str, int, float, bool), no documents, so that the server is not the only thing measured. "
                 "Then, under `/usr/bin/time -v`: `export` of that collection; `verify` of the snapshot; "
                 "`transform` with `fixtures/specs/scale-route.toml` (routing by one metadata key into two "
                 "targets, one field mapping, one validation); `load` into a fresh server with default flags "
                 "(the read-back check included); `load --shard I/3` for I = 0, 1, 2 started at once into "
                 "another fresh server; `verify --against` that server.", "",
                 "- records/s = records / wall seconds of the whole command (process start to exit). The three "
                 "shards: wall seconds until the last one ends, peak RSS the largest of the three, client CPU "
                 "their sum.",
                 "- peak RSS and client CPU: `/usr/bin/time -v`; server CPU: the server process group's "
                 "user+system seconds during the step.",
                 f"- Targets (issue 13): peak RSS at the largest size within {FLAT - 1:.0%} of the smallest and "
                 f"under {RSS_MB} MB, for every step; export rate at the largest size at least "
                 f"{EXPORT_KEPT:.0%} of its rate at the smallest.", ""]
        acc = self.acceptance()
        lines += targets_table(acc)
        for step, name in STEPS.items():
            t = self.step_table(step)
            if t:
                lines += ["", f"### {name}", ""] + t
        notes = m.get("notes") or []
        if notes:
            lines += ["", "Not run in this run:", ""] + [f"- {n}" for n in notes]
        seed = self.seed_table()
        if seed:
            lines += ["", "### Seed (the official Python client, 2 writers; not a chroma-snap step)", ""] + seed
        lt = self.list_table()
        if lt:
            lines += ["", "### Listing ids", "",
                      "The export lists every id before it fetches records: `get` with `include: []`, "
                      "`--list-page` ids (30,000 by default) at a time, into a temporary file, the offset growing by a page. "
                      "`bench/list_cost.py` on the source server after the export: one page at 0, 25%, 50% and 75% "
                      "of the collection and at its last page (median of 3), then the whole listing page after "
                      "page, as the export does it.", ""] + lt
        lines += missed_list(acc)
        lines += ["", END]
        return "\n".join(lines) + "\n"


def main():
    run("scale_report.py", lambda rows, meta: Scale(rows, meta).render(), BEGIN, END)


if __name__ == "__main__":
    main()
