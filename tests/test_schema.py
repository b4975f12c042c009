#!/usr/bin/python3
"""The results schema (docs/results-schema.md) held against real files.

Runs a small benchmark with the built binary, with as many of the optional
keys as are cheap to get: a safetensors and a pickle loader, the torch-load
peer (a skipped cell where torch is missing), a GPU loader (skipped without a
GPU), a loader that reports `unsupported` (ckptbench-test's test-unsupported:
a cell skipped after its trial), --timeline, cold and warm, warm-ups, the
paired ceilings; then a --sized-ceilings run (calibration.by_size), a partial
load (cells' selection and the partial-load figures), an `ab`
of the binary against itself (config.ab, its compare.json), and `compare`
of the first run against ab's head (the compare document, with unmatched
cells and warnings).

The document's tables are read as its last section says:
  - header `path`: keys of results files (ckptbench/1);
  - header `compare path`: keys of the compare document;
  - header `column`: the CSV's columns, in order;
  - header `alias`: the first column's paths have the second column's keys;
  - first column: one backticked path; `type`: words of
    string|integer|number|boolean|object|open object|array|null joined by
    "or"; `present`: "always..." or "optional...".

Checks:
  - every key written (fresh files, and every ckptbench/1 file under
    results/reference/) is documented, and its value has a documented type;
    keys inside an open object are not checked;
  - every key documented "always" is in every instance of its parent object
    in the fresh files, and every documented key's parent is documented;
  - the CSV's header is the documented columns, in order, with one row per
    trial.

Environment: CKPTBENCH (the built binary; exit 77 when missing),
CKPTBENCH_TEST (ckptbench-test, optional), CKPTBENCH_SOURCE (the source
root), CKPTBENCH_SCRATCH (where the dataset and files go; default: beside the
binary). Exit 0 when every check holds, 1 otherwise, with every failure named.
"""
import csv
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TYPES = {"string", "integer", "number", "boolean", "object", "open object", "array", "null"}
SCHEMA = "ckptbench/1"
COMPARE_SCHEMA = "ckptbench-compare/1"


class DocError(Exception):
    pass


# --------------------------------------------------------------- the document

class Entry:
    def __init__(self, path, types, required, line):
        self.path, self.types, self.required, self.line = path, types, required, line
        self.open = "open object" in types


class Schema:
    """The keys of one kind of document: path -> Entry, aliases, children."""

    def __init__(self, name):
        self.name = name
        self.keys = {}
        self.aliases = {}
        self.children = {}

    def add(self, entry):
        if entry.path in self.keys:
            raise DocError("line %d: `%s` documented twice" % (entry.line, entry.path))
        self.keys[entry.path] = entry

    def finish(self):
        """Indexes children by parent and checks each parent is documented."""
        problems = []
        for path in self.keys:
            parent = parent_of(path)
            self.children.setdefault(parent, []).append(path)
            if parent == "":
                continue
            container = parent[:-2] if parent.endswith("[]") else parent
            e = self.keys.get(container)
            if e is None:
                problems.append("%s: `%s` is documented but its parent `%s` is not"
                                % (self.name, path, container))
            elif parent.endswith("[]") and "array" not in e.types:
                problems.append("%s: `%s` is under `%s`, which is not documented as an array"
                                % (self.name, path, container))
            elif not parent.endswith("[]") and not ({"object", "open object"} & e.types):
                problems.append("%s: `%s` is under `%s`, which is not documented as an object"
                                % (self.name, path, container))
        for alias, target in self.aliases.items():
            if alias[:-2] not in self.keys or not target.endswith("[]") \
                    or target[:-2] not in self.keys:
                problems.append("%s: alias `%s` -> `%s` names undocumented arrays"
                                % (self.name, alias, target))
        return problems

    def normalise(self, path):
        for alias, target in self.aliases.items():
            if path == alias or path.startswith(alias + "."):
                return target + path[len(alias):]
        return path

    def in_open_object(self, path):
        """True when an ancestor of path is documented as an open object."""
        p = path
        while p:
            p = parent_of(p)
            if p.endswith("[]"):
                p = p[:-2]
            e = self.keys.get(p)
            if e is not None and e.open:
                return True
        return False


def parent_of(path):
    return path.rsplit(".", 1)[0] if "." in path else ""


def split_row(line):
    cells = line.strip().strip("|").split("|")
    return [c.strip() for c in cells]


def parse_doc(path):
    """The document's tables: (results Schema, compare Schema, csv columns)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    results, compare = Schema("results"), Schema("compare")
    columns = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        start = i
        table = []
        while i < len(lines) and lines[i].startswith("|"):
            table.append((i + 1, lines[i]))
            i += 1
        header = [h.lower() for h in split_row(table[0][1])]
        rows = [(n, split_row(text)) for n, text in table[2:]]
        kind = header[0]
        if kind not in ("path", "compare path", "column", "alias"):
            continue
        for n, row in rows:
            m = re.fullmatch(r"`([^`]+)`", row[0])
            if not m:
                raise DocError("line %d: the first column must be one backticked path, not %r"
                               % (n, row[0]))
            key = m.group(1)
            if kind == "column":
                columns.append(key)
                continue
            if kind == "alias":
                m2 = re.fullmatch(r"`([^`]+)`", row[1] if len(row) > 1 else "")
                if not m2 or not key.endswith("[]"):
                    raise DocError("line %d: an alias row is `X[]` | `Y[]`" % n)
                results.aliases[key] = m2.group(1)
                continue
            try:
                type_text = row[header.index("type")]
                present = row[header.index("present")]
            except (ValueError, IndexError):
                raise DocError("line %d: a key table needs type and present columns (table "
                               "at line %d)" % (n, start + 1))
            types = {t.strip() for t in type_text.split(" or ")}
            if not types or not types <= TYPES:
                raise DocError("line %d: `%s` has type %r; types are %s joined by \"or\""
                               % (n, key, type_text, ", ".join(sorted(TYPES))))
            if present.startswith("always"):
                required = True
            elif present.startswith("optional"):
                required = False
            else:
                raise DocError("line %d: `%s`: present must start with always or optional, "
                               "not %r" % (n, key, present))
            (compare if kind == "compare path" else results).add(
                Entry(key, types, required, n))
    if not results.keys or not compare.keys or not columns:
        raise DocError("no results, compare or CSV table found")
    return results, compare, columns


# ------------------------------------------------------------------ checking

def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    return "array"


def type_ok(v, types):
    t = json_type(v)
    return t in types or (t == "integer" and "number" in types) or \
        (t == "object" and "open object" in types)


class Report:
    """Failures, each said once with how often it happened."""

    def __init__(self):
        self.failures = {}

    def fail(self, text):
        self.failures[text] = self.failures.get(text, 0) + 1

    def print(self):
        for text, n in self.failures.items():
            print("FAIL: " + text + (" (%d times)" % n if n > 1 else ""))


def check_doc(doc, schema, label, report, fresh):
    """Walks the document: every key documented, of a documented type; in a
    fresh file, every "always" key in every instance of its parent. Returns
    the set of documented paths written."""
    seen = set()

    def visit_object(obj, path):
        if fresh:
            for child in schema.children.get(path, []):
                e = schema.keys[child]
                if e.required and child.rsplit(".", 1)[-1] not in obj:
                    report.fail("%s: `%s` is documented as always present but missing"
                                % (label, child))
        for key, value in obj.items():
            p = schema.normalise(path + "." + key if path else key)
            e = schema.keys.get(p)
            if e is None:
                report.fail("%s: `%s` is written but not documented" % (label, p))
                continue
            seen.add(p)
            if not type_ok(value, e.types):
                report.fail("%s: `%s` is %s, documented as %s"
                            % (label, p, json_type(value), " or ".join(sorted(e.types))))
            if e.open:
                continue
            visit_value(value, p)

    def visit_value(value, path):
        if isinstance(value, dict):
            visit_object(value, path)
        elif isinstance(value, list):
            element = schema.normalise(path + "[]")
            for x in value:
                if isinstance(x, (dict, list)):
                    visit_value(x, element)

    visit_object(doc, "")
    return seen


def check_csv(csv_path, doc, columns, label, report):
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        report.fail("%s: empty CSV" % label)
        return
    header = rows[0]
    for c in header:
        if c not in columns:
            report.fail("%s: CSV column `%s` is written but not documented" % (label, c))
    for c in columns:
        if c not in header:
            report.fail("%s: CSV column `%s` is documented but not written" % (label, c))
    if set(header) == set(columns) and header != columns:
        report.fail("%s: CSV columns in another order than documented: %s"
                    % (label, ",".join(header)))
    want = sum(len(c.get("warmup", [])) + len(c.get("trials", [])) for c in doc["cells"])
    if len(rows) - 1 != want:
        report.fail("%s: %d CSV rows for %d trials" % (label, len(rows) - 1, want))
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            report.fail("%s: CSV line %d has %d fields, the header %d"
                        % (label, n, len(row), len(header)))


# ------------------------------------------------------------------- running

def run(argv, env=None, ok=(0,)):
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=240)
    print("  %s %s: exit %d, %.1f s" % (os.path.basename(argv[0]), argv[1], p.returncode,
                                       time.monotonic() - t0))
    if p.returncode not in ok:
        sys.stdout.write(p.stdout[-3000:])
        sys.stdout.write(p.stderr[-3000:])
        raise RuntimeError("%s exited %d" % (" ".join(argv), p.returncode))
    return p


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main():
    binary = os.environ.get("CKPTBENCH", "")
    if not binary or not os.access(binary, os.X_OK):
        print("CKPTBENCH not set or not executable: skipped")
        return 77
    source = os.environ.get("CKPTBENCH_SOURCE") or \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    test_bin = os.environ.get("CKPTBENCH_TEST", "")
    if not test_bin or not os.access(test_bin, os.X_OK):
        test_bin = ""
    doc_path = os.path.join(source, "docs", "results-schema.md")
    try:
        results, compare, columns = parse_doc(doc_path)
    except (OSError, DocError) as e:
        print("FAIL: %s: %s" % (doc_path, e))
        return 1
    report = Report()
    for problem in results.finish() + compare.finish():
        report.fail("%s: %s" % (doc_path, problem))
    print("%s: %d results keys, %d compare keys, %d CSV columns, %d alias"
          % (doc_path, len(results.keys), len(compare.keys), len(columns),
             len(results.aliases)))

    scratch = os.environ.get("CKPTBENCH_SCRATCH") or \
        os.path.join(os.path.dirname(os.path.abspath(binary)), "schema-scratch")
    os.makedirs(scratch, exist_ok=True)
    out = tempfile.mkdtemp(prefix="schema.", dir=scratch)
    env = dict(os.environ, CKPTBENCH_CALIBRATE_SIZE="16M")
    started = time.monotonic()
    try:
        g = run([binary, "gen", "--preset", "llama", "--size", "8M", "-o",
                 os.path.join(scratch, "data"), "--quiet"])
        m = re.search(r"^(.*?): ", g.stdout, re.M)
        if not m or not os.path.isfile(os.path.join(m.group(1), "manifest.json")):
            raise RuntimeError("gen printed no dataset: %r" % g.stdout)
        dataset = m.group(1)
        loaders = "safetensors-read,pickle,torch-load,safetensors-gpu"
        if test_bin:
            loaders += ",test-unsupported"
        else:
            print("  no CKPTBENCH_TEST: no cell skipped after an unsupported trial")
        fresh = os.path.join(out, "fresh.json")
        run([test_bin or binary, "run", "--datasets", dataset, "--loaders", loaders,
             "--cache", "cold,warm", "--repeat", "2", "--warmup", "1", "--timeline",
             "--quiet", "-o", fresh], env=env)
        sized = os.path.join(out, "sized.json")
        run([binary, "run", "--datasets", dataset, "--loaders", "safetensors-read",
             "--cache", "warm", "--repeat", "1", "--warmup", "0", "--sized-ceilings",
             "--quiet", "-o", sized], env=env)
        partial = os.path.join(out, "partial.json")
        run([binary, "run", "--datasets", dataset, "--loaders", "safetensors-read,pickle",
             "--cache", "cold", "--repeat", "1", "--warmup", "0", "--tp", "2:1",
             "--select", "layers.0-1,lm_head", "--quiet", "-o", partial], env=env)
        ab = os.path.join(out, "ab")
        run([binary, "ab", "--base", binary, "--head", binary, "--repeat", "1",
             "--warmup", "0", "--datasets", dataset, "--loaders", "safetensors-read",
             "--cache", "warm", "-o", ab], ok=(0, 1))
        cmp_path = os.path.join(out, "compare.json")
        run([binary, "compare", fresh, os.path.join(ab, "head.json"), "--format", "json",
             "-o", cmp_path], ok=(0, 1))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print("FAIL: %s (files left in %s)" % (e, out))
        return 1
    print("  the runs took %.1f s" % (time.monotonic() - started))

    # Fresh results files: both directions.
    written = set()
    for path in (fresh, sized, partial, os.path.join(ab, "base.json"),
                 os.path.join(ab, "head.json")):
        doc = load(path)
        label = os.path.relpath(path, out)
        if doc.get("schema") != SCHEMA:
            report.fail("%s: schema %r" % (label, doc.get("schema")))
        written |= check_doc(doc, results, label, report, fresh=True)
    for path in (fresh, sized):
        check_csv(path[:-5] + ".csv", load(path), columns, os.path.relpath(path, out)[:-5]
                  + ".csv", report)

    # The compare documents: both directions.
    cmp_written = set()
    for path in (cmp_path, os.path.join(ab, "compare.json")):
        doc = load(path)
        label = os.path.relpath(path, out)
        if doc.get("schema") != COMPARE_SCHEMA:
            report.fail("%s: schema %r" % (label, doc.get("schema")))
        cmp_written |= check_doc(doc, compare, label, report, fresh=True)

    # Committed reference runs: every key written is documented.
    refs = sorted(glob.glob(os.path.join(source, "results", "reference", "**", "*.json"),
                            recursive=True))
    n_refs = 0
    for path in refs:
        try:
            doc = load(path)
        except (OSError, ValueError) as e:
            report.fail("%s: not JSON: %s" % (path, e))
            continue
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            continue
        n_refs += 1
        check_doc(doc, results, os.path.relpath(path, source), report, fresh=False)
    print("checked %d reference results files" % n_refs)

    # Coverage: what this run did not exercise (not a failure: the document
    # says when each appears).
    for schema, seen in ((results, written), (compare, cmp_written)):
        unseen = [p for p, e in schema.keys.items()
                  if p not in seen and not schema.in_open_object(p)]
        if unseen:
            print("%s keys not written in this run (optional, or under an empty array or "
                  "an absent object): %s" % (schema.name, ", ".join(sorted(unseen))))

    if report.failures:
        report.print()
        print("%d problems; files left in %s" % (len(report.failures), out))
        return 1
    shutil.rmtree(out, ignore_errors=True)
    print("ok: every key written is documented, every key documented always is written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
