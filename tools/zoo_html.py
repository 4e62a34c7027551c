#!/usr/bin/env python3
"""The public zoo's HTML reports in headless Chromium.

Usage: tools/zoo_html.py MEMDX ZOO_DIR [--seconds S] [--only NAME,...] [--keep DIR]

For each program of ZOO_DIR/expected.json: builds it, runs `MEMDX run --html` on it, and opens
the page in headless Chromium with tests/browser/check_html_report.py, which checks that the page
has no script error, fetches nothing, draws its charts and is not blank. On top of that the page
must show the verdict the zoo expects: its headline is the terminal's first line, its leak flag
says leak exactly when the zoo expects one, and each expected leak kind that memdx found is a
confirmed hypothesis in the page's table. Prints one line per program and 'N passed, M failed'.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "tests", "browser", "check_html_report.py")


def command_of(name, spec, zoo, work, seconds):
    if "cmd" in spec:
        return [spec["cmd"][0], os.path.join(zoo, spec["cmd"][1]), seconds]
    exe = os.path.join(work, name)
    subprocess.run(["g++", "-O2", "-g", "-pthread", "-o", exe, os.path.join(zoo, name + ".cpp")], check=True)
    return [exe, seconds]


def check_one(memdx, name, spec, zoo, work, seconds):
    html = os.path.join(work, name + ".html")
    verdict_path = os.path.join(work, name + ".json")
    run = subprocess.run([memdx, "run", "--quiet", "--json", verdict_path, "--html", html,
                          "--out", os.path.join(work, name + ".memdx"), "--"] +
                         command_of(name, spec, zoo, work, seconds),
                         capture_output=True, text=True, timeout=float(seconds) * 6 + 60)
    if not os.path.exists(html):
        return f"no HTML report (memdx exited {run.returncode}: {run.stderr.strip()[-200:]})"
    # run prints its verdict on stderr, after the program's own lines.
    headline = next((line for line in run.stderr.splitlines() if line.startswith(("LEAK", "No leak"))), "")
    verdict = json.load(open(verdict_path))
    expect_leak = bool(spec["leak_any"])
    args = [sys.executable, DRIVER, html, "--expect-headline", headline,
            "--expect-leak", "true" if expect_leak else "false"]
    found = {f["kind"] for f in verdict["findings"] if f["severity"] == "leak"}
    for kind in sorted(found & set(spec["leak_any"])):
        args += ["--expect-hypothesis", f"{kind}=confirmed"]
    check = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        return " / ".join(line for line in check.stdout.splitlines() if line.startswith("FAIL"))[:600]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("memdx")
    parser.add_argument("zoo")
    parser.add_argument("--seconds", default="10")
    parser.add_argument("--only", default="")
    parser.add_argument("--keep", help="write the reports here instead of a temporary directory")
    options = parser.parse_args()
    memdx = os.path.abspath(options.memdx)
    expected = json.load(open(os.path.join(options.zoo, "expected.json")))
    only = set(filter(None, options.only.split(",")))
    work = options.keep or tempfile.mkdtemp(prefix="zoo-html-")
    os.makedirs(work, exist_ok=True)
    passed = failed = 0
    for name, spec in expected.items():
        if only and name not in only:
            continue
        problem = check_one(memdx, name, spec, options.zoo, work, options.seconds)
        if problem:
            failed += 1
            print(f"FAIL {name}: {problem}", flush=True)
        else:
            passed += 1
            print(f"ok   {name}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
