#!/usr/bin/env python3
"""Timing harness of compare_analysis.sh: the cost of analysing one heap trace, `memdx report`
beside `heaptrack_print`, on traces of the same workload.

    analysis_runs.py --runs N --workdir DIR --memdx BIN [--heaptrack BIN --heaptrack-print BIN]
                     [--heaptrack-timeout-s S] [--min-events N] --workload NAME=CMD...

For each workload (CMD is one string, split like a shell would):
  1. record it once with `memdx trace -o DIR/NAME.memdx -- CMD` and once with
     `heaptrack -o DIR/NAME.heaptrack CMD`; both must exit 0 and print the same "checksum" line
     (the workloads are deterministic, so both traces hold the same allocations). heaptrack is
     killed, and left out, when its recording takes longer than --heaptrack-timeout-s.
  2. run each analysis once untimed (it warms the page cache, and its output gives the counts):
       memdx report TRACE                     (text to stdout)
       memdx report TRACE --json DIR/v.json   (text to stdout, the verdict as JSON to the file)
       heaptrack_print -f TRACE --print-leaks=1
     heaptrack_print's default prints the top sites by calls to allocation functions, by peak
     consumption and by temporary allocations, and the totals; --print-leaks=1 adds the leaks, so
     it prints what `memdx report` does (sites, peak, leaks, temporaries).
  3. RUNS rounds of the three, stdout to /dev/null, each round starting one later in that order.

Each run's wall time is time.perf_counter from spawn to reap, its CPU time (user + sys) comes from
os.wait4, and its peak RSS from GNU time's %M (--time; the same ru_maxrss, but of a child forked
by a 1 MiB process). This script's own ru_maxrss of a child is no use: Python spawns with vfork,
and exec counts the high-water RSS of the parent's mm as the child's, so every figure would be at
least this script's own peak (55 MiB here, from reading heaptrack_print's output). Without
--time the table says its RSS is only an upper bound. Events are memdx's: allocations + frees +
maps over every traced process (heap[] of `memdx report --json`). Prints markdown tables of
medians and ratios to heaptrack_print.
"""
import argparse
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree by the import below
from time_runs import RunFailed, checksum_line, mib, parse_workload, print_machine  # noqa: E402


def run_child(argv, stdout_path, err_path, label, timeout_s=None):
    """Runs argv, stdout to stdout_path and stderr to err_path; returns (wall_s, rusage), or None
    when timeout_s passed first. With a timeout the child gets a session of its own, killed whole
    (heaptrack is a script with helpers) on the timeout or when this script is interrupted.

    The rusage's ru_maxrss is not the child's alone: Python starts children with vfork, and exec
    records the high-water RSS of the mm it leaves, this script's, as the child's. Use
    peak_rss_kib for a figure that matters."""
    with open(stdout_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 start_new_session=timeout_s is not None)
        timer = _kill_after(child.pid, timeout_s)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            if timer is not None:
                _kill_session(child.pid)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        wall_s = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    if timer is not None and timer.fired:
        return None
    if child.returncode != 0:
        with open(err_path, encoding="utf-8", errors="replace") as text:
            tail = text.read()[-2000:]
        raise RunFailed(f"{label} exited with {child.returncode}: {' '.join(argv)}\n{tail}")
    return wall_s, usage


def _kill_session(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class _Timer(threading.Timer):
    fired = False


def _kill_after(pid, timeout_s):
    if timeout_s is None:
        return None

    def kill():
        timer.fired = True
        _kill_session(pid)

    timer = _Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    return timer


def peak_rss_kib(args, argv, stdout_path, label):
    """Runs argv under GNU time, a small process that forks it, so that its peak RSS is its own;
    returns (wall_s, rusage, peak RSS KiB). Without --time, ru_maxrss: an upper bound."""
    if not args.time:
        wall_s, usage = run_child(argv, stdout_path, err_file(args), label)
        return wall_s, usage, usage.ru_maxrss
    rss_path = os.path.join(args.workdir, "rss.txt")
    wall_s, usage = run_child([args.time, "-f", "%M", "-o", rss_path, "--", *argv], stdout_path, err_file(args),
                              label)
    return wall_s, usage, int(read_text(rss_path).split()[-1])


def err_file(args):
    return os.path.join(args.workdir, "run.err")


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as text:
        return text.read()


def record(args, name, workload_argv):
    """Records the workload under both tracers; returns a dict describing the traces."""
    prefix = os.path.join(args.workdir, name)
    traces = {"memdx": prefix + ".memdx", "heaptrack": None, "record_s": {}}
    print(f"  {name}: recording with memdx trace", file=sys.stderr, flush=True)
    wall_s, _ = run_child([args.memdx, "trace", "-o", traces["memdx"], "--", *workload_argv],
                          prefix + "-memdx-run.out", err_file(args), f"{name} under memdx trace")
    traces["record_s"]["memdx"] = wall_s
    reference = checksum_line(read_text(prefix + "-memdx-run.out"))
    if reference is None:
        raise RunFailed(f"{name} under memdx trace printed no checksum line")
    if args.heaptrack:
        traces["heaptrack"] = record_heaptrack(args, name, workload_argv, prefix, reference, traces)
    return traces


def record_heaptrack(args, name, workload_argv, prefix, reference, traces):
    print(f"  {name}: recording with heaptrack", file=sys.stderr, flush=True)
    result = run_child([args.heaptrack, "-o", prefix + ".heaptrack", *workload_argv], prefix + "-heaptrack-run.out",
                       err_file(args), f"{name} under heaptrack", timeout_s=args.heaptrack_timeout_s)
    if result is None:
        for path in glob.glob(glob.escape(prefix + ".heaptrack") + ".*"):
            os.remove(path)
        traces["heaptrack_note"] = f"heaptrack's recording passed {args.heaptrack_timeout_s:g} s and was killed"
        print(f"  {name}: {traces['heaptrack_note']}; memdx alone", file=sys.stderr, flush=True)
        return None
    traces["record_s"]["heaptrack"] = result[0]
    if checksum_line(read_text(prefix + "-heaptrack-run.out")) != reference:
        raise RunFailed(f"{name} under heaptrack printed another checksum than under memdx trace")
    found = [prefix + ".heaptrack" + ext for ext in (".zst", ".gz") if os.path.exists(prefix + ".heaptrack" + ext)]
    if not found:
        raise RunFailed(f"{name}: heaptrack wrote no trace at {prefix}.heaptrack.*")
    return found[0]


def analysis_commands(args, traces, json_path):
    """(tool, argv) of each analysis, in the order of the first round."""
    commands = [("memdx report", [args.memdx, "report", traces["memdx"]]),
                ("memdx report --json", [args.memdx, "report", traces["memdx"], "--json", json_path])]
    if traces["heaptrack"]:
        commands.append(("heaptrack_print", [args.heaptrack_print, "-f", traces["heaptrack"], "--print-leaks=1"]))
    return commands


def memdx_counts(json_path):
    """Totals over every traced process of the verdict's heap[]."""
    with open(json_path, encoding="utf-8") as text:
        heaps = json.load(text).get("heap", [])
    counts = {key: sum(heap.get(key, 0) for heap in heaps)
              for key in ("allocations", "frees", "maps", "peak_live_bytes", "final_live_bytes")}
    counts["events"] = counts["allocations"] + counts["frees"] + counts["maps"]
    counts["processes"] = len(heaps)
    return counts


def heaptrack_counts(printed):
    patterns = {"allocations": r"calls to allocation functions: (\d+)",
                "temporary": r"temporary memory allocations: (\d+)",
                "peak": r"peak heap memory consumption: (\S+)",
                "leaked": r"total memory leaked: (\S+)"}
    return {key: (found.group(1) if (found := re.search(pattern, printed)) else "?")
            for key, pattern in patterns.items()}


def warm_up(args, name, commands, json_path):
    """One untimed run of each analysis; returns the counts read from their output."""
    print(f"  {name}: one untimed run of each analysis", file=sys.stderr, flush=True)
    counts = {}
    for tool, argv in commands:
        out_path = os.path.join(args.workdir, "analysis.out")
        peak_rss_kib(args, argv, out_path, f"{name}: {tool}")
        if tool == "heaptrack_print":
            counts["heaptrack"] = heaptrack_counts(read_text(out_path))
        os.remove(out_path)
    counts["memdx"] = memdx_counts(json_path)
    return counts


def time_rounds(args, name, commands):
    """RUNS alternating rounds; returns {tool: {"wall"|"cpu"|"rss": [per run]}}."""
    results = {tool: {"wall": [], "cpu": [], "rss": []} for tool, _ in commands}
    for round_index in range(args.runs):
        shift = round_index % len(commands)
        for tool, argv in commands[shift:] + commands[:shift]:
            wall_s, usage, rss_kib = peak_rss_kib(args, argv, os.devnull, f"{name}: {tool}")
            results[tool]["wall"].append(wall_s)
            results[tool]["cpu"].append(usage.ru_utime + usage.ru_stime)
            results[tool]["rss"].append(rss_kib)
        print(f"  {name}: round {round_index + 1}/{args.runs} done, load {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
    return results


def measure_workload(args, name, workload_argv):
    traces = record(args, name, workload_argv)
    json_path = os.path.join(args.workdir, name + ".verdict.json")
    commands = analysis_commands(args, traces, json_path)
    counts = warm_up(args, name, commands, json_path)
    results = time_rounds(args, name, commands)
    traces["bytes"] = {"memdx": os.path.getsize(traces["memdx"]),
                       "heaptrack": os.path.getsize(traces["heaptrack"]) if traces["heaptrack"] else None}
    for path in glob.glob(glob.escape(os.path.join(args.workdir, name)) + "[.-]*"):
        os.remove(path)
    return {"traces": traces, "counts": counts, "results": results}


def median(values):
    return statistics.median(values)


def print_trace_table(table):
    print("| workload | events (memdx) | allocations memdx / heaptrack | frees | memdx trace | heaptrack trace "
          "| B/event memdx / heaptrack | recording s memdx / heaptrack |")
    print("|---|---|---|---|---|---|---|---|")
    for name, measured in table:
        memdx, heaptrack = measured["counts"]["memdx"], measured["counts"].get("heaptrack")
        sizes, record_s = measured["traces"]["bytes"], measured["traces"]["record_s"]
        events = memdx["events"]
        ht_allocations = f"{int(heaptrack['allocations']):,}" if heaptrack and heaptrack["allocations"] != "?" else "-"
        ht_size = f"{mib(sizes['heaptrack']):.1f} MiB" if sizes["heaptrack"] else "-"
        ht_per_event = f"{sizes['heaptrack'] / events:.2f}" if sizes["heaptrack"] and events else "-"
        ht_record = f"{record_s['heaptrack']:.1f}" if "heaptrack" in record_s else "-"
        print(f"| {name} | {events:,} | {memdx['allocations']:,} / {ht_allocations} | {memdx['frees']:,} "
              f"| {mib(sizes['memdx']):.1f} MiB | {ht_size} "
              f"| {sizes['memdx'] / max(events, 1):.2f} / {ht_per_event} | {record_s['memdx']:.1f} / {ht_record} |")


def print_analysis_table(table, runs, rss_source):
    print(f"\nMedians of {runs} runs, alternating; ratios are to heaptrack_print on the same workload's trace "
          f"(below 1: memdx is faster / smaller). Peak RSS: {rss_source}.\n")
    print("| workload | analysis | wall s | CPU s | peak RSS MiB | wall ratio | CPU ratio | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, measured in table:
        results = measured["results"]
        peer = results.get("heaptrack_print")
        for tool, values in results.items():
            wall, cpu, rss = median(values["wall"]), median(values["cpu"]), median(values["rss"]) / 1024
            ratios = "| - | - | -"
            if peer and tool != "heaptrack_print":
                ratios = (f"| {wall / median(peer['wall']):.2f}x | {cpu / median(peer['cpu']):.2f}x "
                          f"| {rss / (median(peer['rss']) / 1024):.2f}x")
            print(f"| {name} | `{tool}` | {wall:.3f} | {cpu:.3f} | {rss:.1f} {ratios} |")


def print_details(table, min_events):
    print("\nWhat each reports (a cross-check that both traces hold the same run):")
    for name, measured in table:
        memdx, heaptrack = measured["counts"]["memdx"], measured["counts"].get("heaptrack")
        # heaptrack_print writes sizes in powers of 1000 (29.04M is 29.04e6 bytes): so does this line.
        line = (f"  {name}: memdx peak live {memdx['peak_live_bytes'] / 1e6:.2f}M, live at the end "
                f"{memdx['final_live_bytes'] / 1e3:.2f}K"
                f", {memdx['maps']:,} maps, {memdx['processes']} process(es)")
        if heaptrack:
            line += (f"; heaptrack_print peak {heaptrack['peak']}, leaked {heaptrack['leaked']}, "
                     f"{heaptrack['temporary']} temporary allocations")
        print(line)
        if measured["traces"].get("heaptrack_note"):
            print(f"  {name}: {measured['traces']['heaptrack_note']}: memdx alone")
        if min_events and memdx["events"] < min_events:
            print(f"  {name}: WARNING: {memdx['events']:,} events, fewer than the {min_events:,} asked for")
    print("\nEvery run, wall s (peak RSS MiB), in run order:")
    for name, measured in table:
        for tool, values in measured["results"].items():
            runs = " ".join(f"{wall:.3f} ({rss / 1024:.0f})" for wall, rss in zip(values["wall"], values["rss"]))
            print(f"  {name:<10} {tool:<20} {runs}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", required=True, help="scratch directory for traces and outputs")
    parser.add_argument("--memdx", required=True, help="memdx binary (its trace and report commands)")
    parser.add_argument("--heaptrack", help="heaptrack script; without it, memdx alone")
    parser.add_argument("--heaptrack-print", help="heaptrack_print, needed with --heaptrack")
    parser.add_argument("--heaptrack-timeout-s", type=float, default=None,
                        help="kill heaptrack's recording after this long and report memdx alone")
    parser.add_argument("--time", help="GNU time (/usr/bin/time), for each analysis' own peak RSS")
    parser.add_argument("--min-events", type=int, default=0, help="warn when memdx counts fewer events")
    parser.add_argument("--workload", type=parse_workload, action="append", required=True, metavar="NAME=COMMAND")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if bool(args.heaptrack) != bool(args.heaptrack_print):
        parser.error("--heaptrack and --heaptrack-print go together")
    return args


def main():
    args = parse_args()
    print_machine()
    table = []
    try:
        for name, workload_argv in args.workload:
            table.append((name, measure_workload(args, name, workload_argv)))
    except RunFailed as failure:
        print(f"analysis_runs.py: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("analysis_runs.py: interrupted", file=sys.stderr)
        return 130
    print()
    print_trace_table(table)
    rss_source = ("GNU time's %M" if args.time else
                  "ru_maxrss, an upper bound (at least this script's own peak; install GNU time)")
    print_analysis_table(table, args.runs, rss_source)
    print_details(table, args.min_events)
    print()
    print_machine()
    return 0


if __name__ == "__main__":
    sys.exit(main())
