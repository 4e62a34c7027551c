#!/usr/bin/env python3
"""What a long `memdx watch` leaves on disk, and what its once-a-minute thinning costs then.

    bench/long_run_size.py [BUILD_DIR] [--hours 24] [--pids 1001] [--interval-ms 1000] [--minutes 3]
                           [--incremental] [--keep PATH]

A 24-hour watch cannot be run for a benchmark, so this builds the recording such a watch would
have at hour HOURS and then runs MINUTES more minutes of the writer's work on it:

  * the schema (and page size, auto_vacuum) come from a real recording: BUILD_DIR/memdx watches
    a `sleep` for 2 s; the row values are that recording's, i.e. those of an idle process;
  * the thinning statement is read from src/store/recording_writer.cpp (the `thin` statement),
    and the policy is `RecordingWriter::thin_for_long_run`: samples older than 10 min are
    thinned to one per pid per 1 s, older than 60 min to one per 10 s (kept in sync by hand);
  * the first HOURS - MINUTES/60 are inserted as that policy leaves them (already thinned), in
    tick order; then every simulated second inserts one sample per pid and commits, and every
    simulated minute runs both thinning passes, as `run_session` does.

It prints the samples kept, the file size, bytes per sample, and the CPU time of each thinning
pass (SQLite's own work: the same libsqlite3 as memdx where both use the system's). With
--incremental it also times the same statement limited to the rows that aged into each
window since the previous pass (`AND t_ms >= lower bound`), the fix proposed in bench/README.md.
Insert costs here are Python's, not memdx's, and are not reported.
"""
import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

MINUTE_MS = 60_000
HERE = os.path.dirname(os.path.abspath(__file__))


def thin_statement():
    source = os.path.join(HERE, "..", "src", "store", "recording_writer.cpp")
    with open(source) as f:
        text = f.read()
    match = re.search(r'thin\(db\.prepare\(R"sql\((.*?)\)sql"\)\)', text, re.S)
    if not match:
        sys.exit(f"long_run_size.py: no `thin` statement found in {source}; update this script")
    return match.group(1)


def template_recording(memdx, work):
    """A real recording of an idle process: its schema and one row of values."""
    path = os.path.join(work, "template.memdx")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        subprocess.run([memdx, "watch", str(sleeper.pid), "--interval", "1000", "--duration", "2", "--quiet",
                        "--out", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    return path


def policy_keeps(t_ms, now_ms, interval_ms):
    """Whether thin_for_long_run, run every minute up to now_ms, has kept the tick at t_ms."""
    age = now_ms - t_ms
    if age > 60 * MINUTE_MS:
        return t_ms % 10_000 < interval_ms  # first tick of each 10 s bucket (equal RSS: earliest)
    if age > 10 * MINUTE_MS:
        return t_ms % 1_000 < interval_ms
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--pids", type=int, default=1001)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=3, help="minutes simulated tick by tick at the end")
    parser.add_argument("--incremental", action="store_true", help="also time the proposed incremental thinning")
    parser.add_argument("--keep", metavar="PATH", help="keep the recording there (e.g. for `memdx report PATH`)")
    args = parser.parse_args()
    memdx = os.path.join(args.build_dir, "memdx")
    if not os.access(memdx, os.X_OK):
        sys.exit(f"long_run_size.py: {memdx} is missing; run: cmake --build {args.build_dir} --target memdx")
    thin_sql = thin_statement()
    incremental_sql = thin_sql.replace(
        "FROM samples WHERE t_ms < ?1)",
        "FROM samples WHERE pid IN (SELECT pid FROM processes) AND t_ms >= ?3 AND t_ms < ?1)")
    if args.incremental and incremental_sql == thin_sql:
        sys.exit("long_run_size.py: cannot derive the incremental statement; update this script")

    work = tempfile.mkdtemp()
    try:
        template = template_recording(memdx, work)
        path = os.path.join(work, "long.memdx")
        shutil.copy(template, path)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        row = db.execute("SELECT * FROM samples LIMIT 1").fetchone()
        db.execute("DELETE FROM samples")
        db.execute("DELETE FROM processes")
        columns = len(row)
        insert = f"INSERT INTO samples VALUES ({', '.join('?' * columns)})"
        pid_base = 100_000
        pids = range(pid_base, pid_base + args.pids)
        interval = args.interval_ms
        end_ms = int(args.hours * 3600_000)
        live_from_ms = max(0, end_ms - args.minutes * MINUTE_MS)
        live_from_ms -= live_from_ms % MINUTE_MS

        # Fast-forward: the history as the policy has left it by live_from_ms.
        started = time.monotonic()
        db.execute("BEGIN")
        db.executemany("INSERT INTO processes (pid, ppid, command, first_seen_ms) VALUES (?, 1, '[\"sleep\"]', 0)",
                       ((pid,) for pid in pids))
        for t_ms in range(0, live_from_ms, interval):
            if not policy_keeps(t_ms, live_from_ms, interval):
                continue
            db.executemany(insert, ((pid, t_ms) + row[2:] for pid in pids))
        db.execute("COMMIT")
        built = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        print(f"memdx recording after {args.hours:g} h of {args.pids} pids at {interval} ms "
              f"(SQLite {sqlite3.sqlite_version}; history of {built} samples built in "
              f"{time.monotonic() - started:.0f} s, then {args.minutes} min tick by tick)")

        # Tick by tick, as run_session does: one commit per second, thinning every minute.
        passes = []  # (t_ms, CPU s of the current passes, CPU s of the incremental ones)
        windows = ((10 * MINUTE_MS, 1000), (60 * MINUTE_MS, 10_000))
        lower = {age: max(0, live_from_ms - age) for age, _ in windows}
        for t_ms in range(live_from_ms, end_ms + 1, interval):
            db.execute("BEGIN")
            db.executemany(insert, ((pid, t_ms) + row[2:] for pid in pids))
            db.execute("COMMIT")
            if t_ms == live_from_ms or t_ms % MINUTE_MS != 0:
                continue
            current = incremental = 0.0
            for age, keep_every in windows:
                older_than = t_ms - age
                if args.incremental:
                    # Timed on the same rows, then rolled back: the current statement does the work.
                    bound = lower[age] - lower[age] % keep_every
                    db.execute("BEGIN")
                    cpu = time.process_time()
                    db.execute(incremental_sql, (older_than, keep_every, bound))
                    incremental += time.process_time() - cpu
                    db.execute("ROLLBACK")
                    lower[age] = max(0, older_than)
                db.execute("BEGIN")
                cpu = time.process_time()
                if "?3" in thin_sql:
                    # The writer's statement is the incremental one now: it gets the window's lower bound.
                    bound = lower[age] - lower[age] % keep_every
                    db.execute(thin_sql, (older_than, keep_every, bound))
                    lower[age] = max(0, older_than)
                else:
                    db.execute(thin_sql, (older_than, keep_every))
                current += time.process_time() - cpu
                db.execute("COMMIT")
            passes.append((t_ms, current, incremental))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        samples = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        free_pages = db.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.close()
        size = os.path.getsize(path)

        for t_ms, current, incremental in passes:
            text = f"{current:6.2f} s CPU"
            if args.incremental:
                text += f", incremental {incremental:6.3f} s"
            print(f"  thinning at {t_ms / 3600_000:6.2f} h: {text}")
        if passes:
            mean = sum(p[1] for p in passes) / len(passes)
            print(f"  thinning: {mean:.2f} s CPU per minute = {mean / 60 * 100:.1f} % of one core")
            if args.incremental:
                mean = sum(p[2] for p in passes) / len(passes)
                print(f"  incremental thinning: {mean:.3f} s CPU per minute = {mean / 60 * 100:.2f} % of one core")
        print(f"  samples kept: {samples} ({samples / args.pids:.0f} per pid)")
        print(f"  file: {size} bytes ({size / 2**20:.1f} MiB, {free_pages * page_size / 2**20:.1f} MiB of it free pages); "
              f"{size / samples:.1f} bytes per sample")
        if args.keep:
            shutil.move(path, args.keep)
            print(f"  kept as {args.keep}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
