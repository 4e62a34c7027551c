#!/usr/bin/env python3
"""Opens a memdx HTML report in headless Chromium and checks it as a reader would see it.

Talks the Chrome DevTools Protocol over --remote-debugging-pipe (file descriptors 3 and 4,
JSON messages each ended by a NUL byte), so it needs nothing but the Python standard library
and /usr/bin/chromium. Checks:

  - no uncaught script exception, no console error, no error in the browser's log (a CSP
    violation is one);
  - no network request but the page itself (and data: URLs): the report is self-contained;
  - the verdict headline (--expect-headline / --expect-headline-prefix / --expect-headline-contains),
    its data-leak flag (--expect-leak), hypotheses rows (--expect-hypothesis NAME=STATUS);
  - timeline charts drawn with real geometry, flame graph rectangles (--expect-flame) or the
    no-heap-trace sentence (--expect-no-flame);
  - a screenshot that is not blank (--screenshot FILE keeps it).

Prints one line per failed check and exits 1 on any failure; exits 2 when it cannot run at all.
Always kills Chromium's process group and removes its profile directory.
"""

import argparse
import base64
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
]
VIEWPORT_WIDTH = 1280
VIEWPORT_HEIGHT = 900
MAX_SCREENSHOT_HEIGHT = 8000
# The blank-page check decodes the PNG in pure Python: it looks at the page's first 4000 CSS
# pixels at a quarter of their size (a second of work rather than half a minute).
CHECKED_HEIGHT = 4000
CHECKED_SCALE = 0.25

# What the page says about itself, gathered in one evaluation once it has loaded.
PAGE_FACTS = r"""
(() => {
  const verdict = document.querySelector('#verdict');
  const headline = document.querySelector('#verdict .headline');
  const rows = Array.from(document.querySelectorAll('#hypotheses tbody tr')).map((tr) => ({
    name: tr.getAttribute('data-name'), pid: tr.getAttribute('data-pid'), status: tr.getAttribute('data-status'),
  }));
  const drawn = (el) => {
    const geometry = el.getAttribute(el.tagName.toLowerCase() === 'path' ? 'd' : 'points') || '';
    const box = el.getBBox ? el.getBBox() : { width: 0, height: 0 };
    return geometry.trim().length > 0 && (box.width > 0 || box.height > 0);
  };
  const chartLines = Array.from(document.querySelectorAll('#timelines svg path.series, #timelines svg polyline')).filter(drawn);
  const sparklines = Array.from(document.querySelectorAll('#processes svg polyline')).filter(drawn);
  const flameRects = Array.from(document.querySelectorAll('#heap .flame svg rect'))
    .filter((r) => Number(r.getAttribute('width')) > 0 && Number(r.getAttribute('height')) > 0);
  return {
    title: document.title,
    leak: verdict ? verdict.getAttribute('data-leak') : null,
    headline: headline ? headline.textContent : null,
    hypotheses: rows,
    chartLines: chartLines.length,
    sparklines: sparklines.length,
    flameRects: flameRects.length,
    noHeapTrace: !!document.querySelector('#no-heap-trace'),
    siteRows: Array.from(document.querySelectorAll('#site-table tbody tr')).map((tr) => ({
      memory: tr.getAttribute('data-memory'),
      function: (tr.querySelector('td.function') || { textContent: '' }).textContent,
      // Where the row's last figure ends on screen: it must be inside the viewport.
      right: Math.ceil(tr.lastElementChild.getBoundingClientRect().right),
    })),
    growthFrames: Array.from(document.querySelectorAll('#flame-growth svg g[data-frame] title')).map((t) => t.textContent.split('\n')[0]),
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})()
"""

# What a reader does next, after the screenshot: hover a chart (its tooltip shows), click the
# last frame of the first flame graph (it is then drawn across the whole width). Handlers that
# throw show up as Runtime.exceptionThrown.
INTERACTION = r"""
(() => {
  const out = { tooltip: null, zoomed: null };
  const hover = document.querySelector('#timelines rect.hover');
  if (hover) {
    hover.scrollIntoView({ block: 'center' });
    const box = hover.getBoundingClientRect();
    hover.dispatchEvent(new MouseEvent('mousemove', { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, bubbles: true }));
    const tip = hover.closest('.chart').querySelector('.tooltip');
    out.tooltip = tip && tip.style.display === 'block' ? tip.textContent : '';
  }
  const flame = document.querySelector('#heap .flame');
  const frames = flame ? flame.querySelectorAll('g[data-frame]') : [];
  if (frames.length) {
    const target = frames[frames.length - 1];
    const title = target.querySelector('title').textContent;
    target.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    out.zoomed = Array.from(flame.querySelectorAll('g[data-frame]')).some((g) =>
      g.querySelector('title').textContent === title && g.querySelector('rect').getAttribute('width') === '1200.00');
  }
  window.scrollTo(0, 0);
  return out;
})()
"""


class Failure(Exception):
    """The check could not run at all (no browser, protocol error, timeout)."""


class Browser:
    """Chromium with a DevTools pipe; a context manager that always kills it and its profile."""

    def __init__(self, chromium, deadline):
        self.chromium = chromium
        self.deadline = deadline
        self.profile = None
        self.process = None
        self.events = []
        self.responses = {}
        self.messages = queue.Queue()
        self.next_id = 0
        self.to_browser = None

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="memdx-chromium-")
        # fd 3: what Chromium reads (our commands); fd 4: what it writes (responses, events).
        commands_r, commands_w = os.pipe()
        replies_r, replies_w = os.pipe()

        def child_fds():
            high_r, high_w = os.dup(commands_r), os.dup(replies_w)
            os.dup2(high_r, 3, inheritable=True)
            os.dup2(high_w, 4, inheritable=True)

        try:
            self.process = subprocess.Popen(
                [self.chromium, *CHROMIUM_FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=child_fds, pass_fds=(3, 4), close_fds=True, start_new_session=True)
        finally:
            os.close(commands_r)
            os.close(replies_w)
        self.to_browser = os.fdopen(commands_w, "wb", buffering=0)
        threading.Thread(target=self._read, args=(replies_r,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        try:
            if self.process and self.process.poll() is None:
                try:
                    self.send("Browser.close", timeout=3)
                except Failure:
                    pass
        finally:
            self._kill()
            if self.to_browser:
                self.to_browser.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def _kill(self):
        if not self.process:
            return
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        # Renderer and utility processes are in the browser's session: end them all.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _read(self, fd):
        buffered = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(1 << 16)
                if not chunk:
                    self.messages.put(None)
                    return
                buffered += chunk
                while b"\0" in buffered:
                    message, buffered = buffered.split(b"\0", 1)
                    self.messages.put(json.loads(message))

    def _remaining(self, timeout=None):
        left = self.deadline - time.monotonic()
        if timeout is not None:
            left = min(left, timeout)
        if left <= 0:
            raise Failure("timed out waiting for Chromium")
        return left

    def _pump(self, timeout):
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        if message is None:
            raise Failure("Chromium closed the DevTools pipe (it exited or crashed)")
        if "id" in message:
            self.responses[message["id"]] = message
        else:
            self.events.append(message)

    def send(self, method, params=None, session=None, timeout=None):
        self.next_id += 1
        command = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        try:
            self.to_browser.write(json.dumps(command).encode() + b"\0")
        except (BrokenPipeError, OSError) as e:
            raise Failure("cannot talk to Chromium: " + str(e))
        while self.next_id not in self.responses:
            self._pump(self._remaining(timeout))
        response = self.responses.pop(self.next_id)
        if "error" in response:
            raise Failure("%s failed: %s" % (method, response["error"].get("message", response["error"])))
        return response.get("result", {})

    def wait_for_event(self, method, session):
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            self._pump(self._remaining())


def decode_png(data):
    """(width, height, channels, rows of bytes) of an 8-bit RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("unsupported PNG layout (depth %d, colour type %d)" % (depth, colour))
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def screenshot_stats(png):
    """Distinct colours and the share of pixels unlike the page background (top-left pixel)."""
    width, height, channels, rows = decode_png(png)
    background = rows[0][:3]
    colours, inked, seen = set(), 0, 0
    for row in rows:
        for x in range(0, width * channels, channels):
            pixel = row[x:x + 3]
            colours.add(pixel)
            seen += 1
            if pixel != background:
                inked += 1
    return len(colours), inked / max(seen, 1)


def page_problems(events, page_url):
    """Script exceptions, console and log errors, and requests for anything but the page, in
    one tab's events."""
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            problems.append("script exception: %s (line %s)" % (text.splitlines()[0] if text else "?", details.get("lineNumber")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            problems.append("console %s: %s" % (params.get("type"), text))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            problems.append("browser log error (%s): %s" % (entry.get("source"), entry.get("text")))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != page_url and not url.startswith("data:"):
                problems.append("network request for %s: the report must be self-contained" % url)
    return problems


def fact_problems(facts, args):
    problems = []
    headline = facts.get("headline")
    if headline is None:
        problems.append("no verdict headline (#verdict .headline) on the page")
    else:
        if args.expect_headline is not None and headline != args.expect_headline:
            problems.append("headline is %r, expected %r" % (headline, args.expect_headline))
        if args.expect_headline_prefix is not None and not headline.startswith(args.expect_headline_prefix):
            problems.append("headline %r does not start with %r" % (headline, args.expect_headline_prefix))
        if args.expect_headline_contains is not None and args.expect_headline_contains not in headline:
            problems.append("headline %r does not contain %r" % (headline, args.expect_headline_contains))
    if args.expect_leak is not None and facts.get("leak") != args.expect_leak:
        problems.append("#verdict data-leak is %r, expected %r" % (facts.get("leak"), args.expect_leak))
    for expected in args.expect_hypothesis:
        name, _, status = expected.partition("=")
        rows = [r for r in facts["hypotheses"] if r["name"] == name]
        if not rows:
            problems.append("no hypotheses row for %s (rows: %s)" % (name, ", ".join(r["name"] for r in facts["hypotheses"]) or "none"))
        elif not any(r["status"] == status for r in rows):
            problems.append("hypothesis %s is %s, expected %s" % (name, "/".join(r["status"] for r in rows), status))
    if args.min_hypotheses and len(facts["hypotheses"]) < args.min_hypotheses:
        problems.append("%d hypotheses rows, expected at least %d" % (len(facts["hypotheses"]), args.min_hypotheses))
    if facts["chartLines"] <= 0:
        problems.append("no timeline chart line drawn with non-empty geometry")
    elif not facts.get("tooltip"):
        problems.append("hovering a timeline chart shows no tooltip")
    if args.expect_flame and facts["flameRects"] <= 0:
        problems.append("no flame graph rectangle drawn")
    elif args.expect_flame and not facts.get("zoomed"):
        problems.append("clicking a flame graph frame does not zoom to it")
    for name in args.expect_site:
        if not any(row["function"] == name for row in facts["siteRows"]):
            problems.append("no row for %s in the sites table (rows: %s)" % (name, ", ".join(r["function"] for r in facts["siteRows"]) or "none"))
    for name in args.expect_growth_frame:
        if not any(frame == name for frame in facts["growthFrames"]):
            problems.append("no frame %s in the growth flame graph (frames: %s)" % (name, ", ".join(facts["growthFrames"][:12]) or "none"))
    beyond = [r for r in facts["siteRows"] if r["right"] > VIEWPORT_WIDTH]
    if beyond:
        problems.append("%d sites table rows end beyond the %d px viewport (the first at %d px): their numbers are off-screen"
                        % (len(beyond), VIEWPORT_WIDTH, beyond[0]["right"]))
    if args.expect_no_flame:
        if facts["flameRects"] > 0:
            problems.append("%d flame graph rectangles drawn without a heap trace" % facts["flameRects"])
        if not facts["noHeapTrace"]:
            problems.append("no 'no heap trace' sentence (#no-heap-trace)")
    return problems


def capture(browser, session, height, scale):
    clip = {"x": 0, "y": 0, "width": VIEWPORT_WIDTH, "height": max(height, 1), "scale": scale}
    shot = browser.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                        session=session)
    return base64.b64decode(shot["data"])


def check_page(browser, path, args):
    """Problems of one report, opened in a fresh tab of `browser`."""
    page_url = "file://" + path
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.send(domain + ".enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT, "deviceScaleFactor": 1, "mobile": False},
                 session=session)
    browser.events.clear()  # about:blank's own events are not the report's
    navigation = browser.send("Page.navigate", {"url": page_url}, session=session)
    if navigation.get("errorText"):
        raise Failure("cannot open %s: %s" % (page_url, navigation["errorText"]))
    browser.wait_for_event("Page.loadEventFired", session)
    facts = browser.send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True}, session=session)
    if "exceptionDetails" in facts:
        raise Failure("cannot read the page: " + json.dumps(facts["exceptionDetails"].get("text")))
    facts = facts["result"]["value"]
    checked_png = capture(browser, session, min(facts["height"], CHECKED_HEIGHT), CHECKED_SCALE)
    if args.screenshot:
        with open(args.screenshot, "wb") as out:
            out.write(capture(browser, session, min(facts["height"], MAX_SCREENSHOT_HEIGHT), 1))
    interaction = browser.send("Runtime.evaluate", {"expression": INTERACTION, "returnByValue": True}, session=session)
    facts.update(interaction.get("result", {}).get("value") or {})
    time.sleep(0.1)  # let late console or log events arrive
    while not browser.messages.empty():
        browser._pump(0.01)
    events = [e for e in browser.events if e.get("sessionId") == session]
    browser.send("Target.closeTarget", {"targetId": target})
    problems = page_problems(events, page_url) + fact_problems(facts, args)
    colours, inked = screenshot_stats(checked_png)
    if colours < 8 or inked < 0.02:
        problems.append("screenshot looks blank: %d colours, %.1f%% of pixels off the background" % (colours, inked * 100))
    if args.verbose:
        print("%s: %s; screenshot %d colours, %.1f%% inked" % (
            path, json.dumps({k: v for k, v in facts.items() if k != "hypotheses"}), colours, inked * 100))
    return problems


def check(args):
    """{report: [problems]}, every report in one browser."""
    paths = [os.path.abspath(report) for report in args.reports]
    for path in paths:
        if not os.path.isfile(path):
            raise Failure("%s: no such report" % path)
    with Browser(args.chromium, time.monotonic() + args.timeout) as browser:
        return {path: check_page(browser, path, args) for path in paths}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="HTML reports to open, all with the same expectations")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for the whole check")
    parser.add_argument("--expect-headline", help="the headline's exact text")
    parser.add_argument("--expect-headline-prefix", help="text the headline starts with")
    parser.add_argument("--expect-headline-contains", help="text the headline contains")
    parser.add_argument("--expect-leak", choices=("true", "false"), help="#verdict's data-leak")
    parser.add_argument("--expect-hypothesis", action="append", default=[], metavar="NAME=STATUS",
                        help="a hypotheses row NAME with STATUS (repeatable)")
    parser.add_argument("--min-hypotheses", type=int, default=0, help="at least this many hypotheses rows")
    flame = parser.add_mutually_exclusive_group()
    flame.add_argument("--expect-flame", action="store_true", help="flame graphs are drawn")
    flame.add_argument("--expect-no-flame", action="store_true", help="the page says there is no heap trace")
    parser.add_argument("--expect-site", action="append", default=[], metavar="FUNCTION",
                        help="a row of the sites table names this function")
    parser.add_argument("--expect-growth-frame", action="append", default=[], metavar="FUNCTION",
                        help="the growth flame graph has a frame of this function")
    parser.add_argument("--screenshot", help="keep the page's screenshot (PNG) here (of the last report)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if not os.access(args.chromium, os.X_OK):
        print("FAIL: %s not found: apt-get install chromium" % args.chromium)
        return 2
    # A ctest timeout sends SIGTERM: unwind so that Chromium is killed and its profile removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    try:
        problems = check(args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 2
    for path, found in problems.items():
        for problem in found:
            print("FAIL: %s: %s" % (path, problem))
        if not found:
            print("ok: %s" % path)
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
