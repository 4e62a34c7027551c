#!/usr/bin/env python3
"""Timing harness of compare_tracers.sh: runs workloads natively and under heap tracers, and
computes every median and ratio in one place.

    time_runs.py tracers  --runs N --workdir DIR [--memdx BIN] [--heaptrack BIN] --workload NAME=CMD...
    time_runs.py analysis --runs N --workdir DIR --heaptrack BIN --heaptrack-print BIN --workload NAME=CMD...

CMD is one string, split like a shell would (shlex). Each run's wall time is time.perf_counter
around the child from spawn to reap. From os.wait4 on that child come its CPU time (user + sys
of the child and every descendant it waited for: the workload and a tracer's helpers) and its
peak RSS, ru_maxrss: the largest single process among them (for a tracer, that may be its helper
rather than the workload). /usr/bin/time -v reports the same numbers, also from wait4.

tracers: for each workload, one untimed native run (warm-up, and the reference checksum), then
RUNS rounds of native, `memdx trace -o TRACE -- CMD` (with --memdx) and `heaptrack -o TRACE CMD`
(with --heaptrack), one after the other; each round starts one later in that order, so no tool
always runs first. Every run must exit 0 and print the native run's "checksum" line. Traces are
written under --workdir, measured, and deleted.

analysis: for each workload, records one heaptrack trace, then times `heaptrack_print -f TRACE`
(text to a file under --workdir) RUNS times, and reads heaptrack's allocation count from it.
"""
import argparse
import glob
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time


class RunFailed(Exception):
    pass


def run_once(argv, workdir, label):
    """Runs argv with stdout and stderr in files; returns (wall_s, rusage, stdout text)."""
    out_path = os.path.join(workdir, "run.out")
    err_path = os.path.join(workdir, "run.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall_s = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    with open(out_path, encoding="utf-8", errors="replace") as out:
        stdout = out.read()
    if child.returncode != 0:
        with open(err_path, encoding="utf-8", errors="replace") as err:
            tail = err.read()[-2000:]
        raise RunFailed(f"{label} exited with {child.returncode}: {shlex.join(argv)}\n{tail}")
    return wall_s, usage, stdout


def checksum_line(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("checksum ")]
    return lines[-1] if lines else None


def trace_bytes(prefix):
    """Total size of the files a tracer wrote for output PREFIX (heaptrack appends .zst or .gz)."""
    return sum(os.path.getsize(path) for path in glob.glob(glob.escape(prefix) + "*"))


def remove_traces(prefix):
    for path in glob.glob(glob.escape(prefix) + "*"):
        os.remove(path)


def tool_commands(args, workload_argv, trace_prefix):
    """(tool name, argv, trace prefix or None) for every tool of a round, native first."""
    tools = [("native", workload_argv, None)]
    if args.memdx:
        tools.append(("memdx", [args.memdx, "trace", "-o", trace_prefix + ".memdx", "--", *workload_argv],
                      trace_prefix + ".memdx"))
    if args.memdx and args.memdx_sample_bytes:
        tools.append(("memdx-sampled", [args.memdx, "trace", "--sample-bytes", str(args.memdx_sample_bytes), "-o",
                                        trace_prefix + ".sampled.memdx", "--", *workload_argv],
                      trace_prefix + ".sampled.memdx"))
    if args.heaptrack:
        tools.append(("heaptrack", [args.heaptrack, "-o", trace_prefix + ".heaptrack", *workload_argv],
                      trace_prefix + ".heaptrack"))
    return tools


def measure_workload(args, name, workload_argv):
    """Runs the rounds of one workload; returns {tool: {"wall"|"cpu"|"rss"|"bytes": [per run]}}."""
    _, _, stdout = run_once(workload_argv, args.workdir, f"{name} (warm-up)")
    reference = checksum_line(stdout)
    if reference is None:
        raise RunFailed(f"{name} printed no checksum line")
    tools = tool_commands(args, workload_argv, os.path.join(args.workdir, name))
    results = {tool: {"wall": [], "cpu": [], "rss": [], "bytes": []} for tool, _, _ in tools}
    for round_index in range(args.runs):
        shift = round_index % len(tools)
        for tool, argv, prefix in tools[shift:] + tools[:shift]:
            wall_s, usage, stdout = run_once(argv, args.workdir, f"{name} under {tool}")
            if checksum_line(stdout) != reference:
                raise RunFailed(f"{name} under {tool} printed {checksum_line(stdout)!r}, native {reference!r}")
            results[tool]["wall"].append(wall_s)
            results[tool]["cpu"].append(usage.ru_utime + usage.ru_stime)
            results[tool]["rss"].append(usage.ru_maxrss)
            if prefix is not None:
                results[tool]["bytes"].append(trace_bytes(prefix))
                remove_traces(prefix)
        print(f"  {name}: round {round_index + 1}/{args.runs} done", file=sys.stderr, flush=True)
    return results


def mib(n_bytes):
    return n_bytes / (1 << 20)


def print_machine():
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, {platform.system()} "
          f"{platform.release()}, load average {load}")


def print_tracer_table(table, tools):
    header = f"{'workload':<10} {'native s':>9}"
    for tool in tools[1:]:
        header += f" {tool + ' s':>12} {'ratio':>6}"
    for tool in tools[1:]:
        header += f" {tool + ' trace':>16}"
    print(header)
    for name, results in table:
        native = statistics.median(results["native"]["wall"])
        row = f"{name:<10} {native:>9.3f}"
        for tool in tools[1:]:
            median = statistics.median(results[tool]["wall"])
            row += f" {median:>12.3f} {median / native:>5.2f}x"
        for tool in tools[1:]:
            row += f" {mib(statistics.median(results[tool]['bytes'])):>12.2f} MiB"
        print(row)
    print("\nCPU time, median (user + sys s of the run's whole process tree, ratio to native); less")
    print("sensitive than wall time to other load on the machine")
    for name, results in table:
        native = statistics.median(results["native"]["cpu"])
        print(f"  {name:<10}  native {native:.2f}" + "".join(
            f"  {tool} {statistics.median(results[tool]['cpu']):.2f} "
            f"({statistics.median(results[tool]['cpu']) / native:.2f}x)" for tool in tools[1:]))
    print("\npeak RSS, median (MiB; the largest process of the run, e.g. heaptrack_interpret)")
    for name, results in table:
        print(f"  {name:<10}" + "".join(
            f"  {tool} {statistics.median(results[tool]['rss']) / 1024:.1f}" for tool in tools))
    print("\nevery run, wall s in run order")
    for name, results in table:
        for tool in tools:
            print(f"  {name:<10} {tool:<10} " + " ".join(f"{x:.3f}" for x in results[tool]["wall"]))


def command_tracers(args):
    tools = [tool for tool, _, _ in tool_commands(args, [], "")]
    print_machine()
    table = []
    for name, workload_argv in args.workload:
        table.append((name, measure_workload(args, name, workload_argv)))
    print(f"\nmedian of {args.runs} runs per tool, alternating within each round")
    print_tracer_table(table, tools)
    print_machine()


def command_analysis(args):
    print_machine()
    print(f"\n{'workload':<10} {'allocations':>12} {'trace':>10} {'print s':>8} {'print peak RSS':>15} "
          f"{'print output':>13}")
    for name, workload_argv in args.workload:
        prefix = os.path.join(args.workdir, name + ".heaptrack")
        run_once([args.heaptrack, "-o", prefix, *workload_argv], args.workdir, f"{name} under heaptrack")
        trace = sorted(glob.glob(glob.escape(prefix) + "*"))[0]
        output = os.path.join(args.workdir, name + ".print.txt")
        walls, rss = [], []
        for _ in range(args.runs):
            wall_s, usage, _ = run_once([args.heaptrack_print, "-f", trace], args.workdir, "heaptrack_print")
            os.replace(os.path.join(args.workdir, "run.out"), output)
            walls.append(wall_s)
            rss.append(usage.ru_maxrss)
        with open(output, encoding="utf-8", errors="replace") as text:
            printed = text.read()
        found = re.search(r"calls to allocation functions: (\d+)", printed)
        allocations = found.group(1) if found else "?"
        print(f"{name:<10} {allocations:>12} {mib(os.path.getsize(trace)):>6.1f} MiB "
              f"{statistics.median(walls):>8.3f} {statistics.median(rss) / 1024:>11.1f} MiB "
              f"{mib(len(printed.encode())):>9.2f} MiB", flush=True)
        print("  heaptrack_print runs, wall s: " + " ".join(f"{x:.3f}" for x in walls))
        os.remove(output)
        remove_traces(prefix)
    print_machine()


def parse_workload(text):
    name, sep, command = text.partition("=")
    argv = shlex.split(command)
    if not sep or not name or not argv:
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {text!r}")
    return name, argv


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("tracers", "analysis"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", required=True, help="scratch directory for outputs and traces")
    parser.add_argument("--memdx", help="memdx binary; its `trace` command is timed when given")
    parser.add_argument("--memdx-sample-bytes", type=int, default=0,
                        help="also time `memdx trace --sample-bytes N` (sampling mode) as tool memdx-sampled")
    parser.add_argument("--heaptrack", help="heaptrack script; timed when given")
    parser.add_argument("--heaptrack-print", help="heaptrack_print, for the analysis mode")
    parser.add_argument("--workload", type=parse_workload, action="append", required=True,
                        metavar="NAME=COMMAND")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.mode == "analysis" and not (args.heaptrack and args.heaptrack_print):
        parser.error("analysis needs --heaptrack and --heaptrack-print")
    try:
        if args.mode == "tracers":
            command_tracers(args)
        else:
            command_analysis(args)
    except RunFailed as failure:
        print(f"time_runs.py: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
