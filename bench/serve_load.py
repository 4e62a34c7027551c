#!/usr/bin/env python3
"""Load on `memdx serve`: 1,000 targets (the tree fixture), scraped 100 times a second for 30 s.

    bench/serve_load.py [BUILD_DIR] [--tree 1000] [--rate 100] [--seconds 30] [--idle 60] [--runs 3]
                        [--top N] [--gzip]

--top N serves top:N (the N processes of the machine with the most PSS, the fixture's among them)
instead of the fixture's tree: the cost of choosing among 1,000 processes. --gzip asks for gzip in
every request, idle and load, as Prometheus does.

Builds nothing: cmake --build BUILD_DIR --target memdx memdx_fixture_tree.

Per run it prints:
  idle cpu%   memdx's CPU time (user + sys, /proc/PID/stat) as a share of one core over --idle
              seconds with a scrape every 15 s and sampling every 15 s: the production cost
  load p50/p99 latency of GET /metrics at --rate requests a second (4 connections, keep-alive)
  load cpu%   memdx's CPU share during the load
  hwm         memdx's peak RSS (VmHWM) at the end
  bytes       size of one /metrics answer
With prometheus-process-exporter installed (Debian's package), the same load on it, configured
with one group per process of the fixture ({{.Comm}}-{{.PID}}), as the peer in the same run.
Medians over --runs are printed last.
"""
import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def hwm_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def get(port, path="/metrics", gzip=False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzip else {})
    body = connection.getresponse().read()
    connection.close()
    return body


def load(port, rate, seconds, connections=4, gzip=False):
    """rate requests a second over `connections` keep-alive connections; the latencies."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    latencies = []
    lock = threading.Lock()
    errors = [0]
    interval = connections / rate
    end = time.monotonic() + seconds

    def worker(offset):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        next_at = time.monotonic() + offset
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if next_at > now:
                time.sleep(next_at - now)
            next_at += interval
            started = time.monotonic()
            try:
                connection.request("GET", "/metrics", headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with lock:
                if ok:
                    latencies.append(time.monotonic() - started)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i * interval / connections,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def percentile(values, share):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(share * (len(values) - 1))))]


def measure(name, pid, port, args):
    # The production case: one scrape per 15 s.
    before = cpu_seconds(pid)
    started = time.monotonic()
    while time.monotonic() - started < args.idle:
        get(port, gzip=args.gzip)
        time.sleep(min(15, max(0, args.idle - (time.monotonic() - started))))
    idle_cpu = (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100
    size = len(get(port, gzip=args.gzip))  # as sent: compressed with --gzip
    before = cpu_seconds(pid)
    started = time.monotonic()
    latencies, errors = load(port, args.rate, args.seconds, gzip=args.gzip)
    load_cpu = (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100
    result = {
        "idle_cpu": idle_cpu,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "load_cpu": load_cpu,
        "hwm_mib": hwm_bytes(pid) / 2**20,
        "bytes": size,
        "requests": len(latencies),
        "errors": errors,
    }
    print(f"{name:17s} idle cpu {idle_cpu:6.3f}%  load p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
          f"  load cpu {load_cpu:5.1f}%  hwm {result['hwm_mib']:6.1f} MiB  {size} bytes  "
          f"{len(latencies)} requests, {errors} errors", flush=True)
    return result


def wait_for_port(process, pattern):
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        text += line
        match = re.search(pattern, line)
        if match:
            return int(match.group(1))
    raise SystemExit(f"serve_load.py: no listening address in:\n{text}")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_memdx(build, root, args):
    targets = [f"top:{args.top}"] if args.top else ["--tree", str(root)]
    serve = subprocess.Popen([f"{build}/memdx", "serve", "--listen", "127.0.0.1:0", "--interval", "15000",
                              "--max-processes", str(args.tree + 10)] + targets,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = wait_for_port(serve, r"serving http://127\.0\.0\.1:(\d+)/metrics")
        series = get(port).decode().count("\nmemdx_process_rss_bytes{")
        if series < (args.top or args.tree):
            print(f"serve_load.py: memdx serves {series} processes, fewer than {args.top or args.tree}", file=sys.stderr)
        return measure("memdx serve", serve.pid, port, args)
    finally:
        serve.terminate()
        serve.wait()


def run_peer(root, args):
    exporter = shutil.which("prometheus-process-exporter")
    if not exporter:
        return None
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "config.yml")
        with open(config, "w") as f:
            f.write("process_names:\n  - comm:\n    - memdx_fixture_t\n    name: '{{.Comm}}-{{.PID}}'\n")
        port = free_port()
        peer = subprocess.Popen([exporter, "-config.path", config, "-web.listen-address", f"127.0.0.1:{port}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    get(port)
                    break
                except OSError:
                    time.sleep(0.1)
            return measure("process-exporter", peer.pid, port, args)
        finally:
            peer.terminate()
            peer.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    parser.add_argument("--tree", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=0, help="serve top:N instead of the fixture's tree")
    parser.add_argument("--gzip", action="store_true", help="load requests ask for gzip")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    fixture = subprocess.Popen([f"{build}/bench/memdx_fixture_tree", str(args.tree)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        ready = fixture.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "ready":
            raise SystemExit("serve_load.py: the tree fixture did not start")
        root = int(ready[1])
        results = {"memdx serve": [], "process-exporter": []}
        for _ in range(args.runs):
            results["memdx serve"].append(run_memdx(build, root, args))
            peer = run_peer(root, args) if not args.top else None
            if peer:
                results["process-exporter"].append(peer)
        print("medians:")
        for name, runs in results.items():
            if not runs:
                continue
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f"{name:17s} idle cpu {median['idle_cpu']:6.3f}%  load p50 {median['p50_ms']:7.2f} ms  "
                  f"p99 {median['p99_ms']:7.2f} ms  load cpu {median['load_cpu']:5.1f}%  "
                  f"hwm {median['hwm_mib']:6.1f} MiB  {int(median['bytes'])} bytes")
    finally:
        fixture.stdin.close()
        fixture.wait()


if __name__ == "__main__":
    main()
