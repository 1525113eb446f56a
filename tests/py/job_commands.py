"""The commands the Kubernetes Jobs of a Markdown document would run, one per pod.

Why: docs/scale-out.md promises a Job manifest that loads a snapshot in shards and a Job that
verifies the result; the test runs exactly what those pods would run, against a real server.
This reads every ```yaml block of the document (several YAML documents per block allowed), keeps
the batch/v1 Jobs and, for each pod (each completion index of an Indexed Job, one pod otherwise),
expands the container's `args` as Kubernetes does: `$(NAME)` from the container's `env` (plain
`value`s, JOB_COMPLETION_INDEX for Indexed Jobs, and --env overrides, which also stand in for
secrets), then mount paths replaced by local directories (--mount).

Usage: python tests/py/job_commands.py DOC.md [--env NAME=VALUE]... [--mount PATH=DIR]...
Prints one JSON object: {"jobs": [{"name", "indexed", "completions", "parallelism",
"backoff_limit_per_index", "restart_policy", "fail_index_exit_codes", "mounts": {path: {"read_only", "claim"}},
"claims": {claim: [access modes]}, "pods": [{"index", "args", "env"}]}]}.
Exits non-zero, naming the problem, if a block is not valid YAML, a `$(NAME)` has no value or a
Job has no container args.
"""

import argparse
import json
import re
import sys

import yaml


def expand(text, env):
    def one(m):
        if m.group(1) not in env:
            sys.exit(f"job_commands: $({m.group(1)}) in {text!r} has no value (env or --env)")
        return env[m.group(1)]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, text)


def job(doc, overrides, mounts, claims):
    spec = doc["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    if not container.get("args"):
        sys.exit(f"job_commands: Job {doc['metadata']['name']} has no container args")
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions", 1)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    seen = {m["mountPath"]: {"read_only": bool(m.get("readOnly")),
                             "claim": volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName")}
            for m in container.get("volumeMounts", [])}
    fail_index = sorted(v for r in spec.get("podFailurePolicy", {}).get("rules", []) if r.get("action") == "FailIndex"
                        for v in r.get("onExitCodes", {}).get("values", []))
    pods = []
    for i in range(completions if indexed else 1):
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        if indexed:
            env["JOB_COMPLETION_INDEX"] = str(i)
        env.update(overrides)
        args = [expand(a, env) for a in container["args"]]
        for path, local in mounts.items():
            at = re.compile(r"(^|=)" + re.escape(path) + r"(?=/|$)")
            args = [at.sub(lambda m: m.group(1) + local, a) for a in args]
        pods.append({"index": i if indexed else None, "args": args,
                     "env": {"JOB_COMPLETION_INDEX": str(i)} if indexed else {}})
    return {"name": doc["metadata"]["name"], "indexed": indexed, "completions": completions,
            "parallelism": spec.get("parallelism", 1), "backoff_limit_per_index": spec.get("backoffLimitPerIndex"),
            "restart_policy": pod.get("restartPolicy"), "fail_index_exit_codes": fail_index, "mounts": seen,
            "claims": claims, "pods": pods}


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("doc")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--mount", action="append", default=[])
    a = ap.parse_args()
    overrides = dict(e.split("=", 1) for e in a.env)
    mounts = dict(m.split("=", 1) for m in a.mount)
    text = open(a.doc, encoding="utf-8").read()
    docs = []
    for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S), 1):
        try:
            docs += [d for d in yaml.safe_load_all(block) if d]
        except yaml.YAMLError as e:
            sys.exit(f"job_commands: {a.doc} yaml block {n}: {e}")
    claims = {d["metadata"]["name"]: d["spec"].get("accessModes", []) for d in docs
              if d.get("kind") == "PersistentVolumeClaim"}
    jobs = [job(d, overrides, mounts, claims) for d in docs if d.get("kind") == "Job"]
    if not jobs:
        sys.exit(f"job_commands: {a.doc} has no Job in its yaml blocks")
    print(json.dumps({"jobs": jobs}))


if __name__ == "__main__":
    main()
