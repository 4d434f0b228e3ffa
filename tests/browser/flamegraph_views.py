#!/usr/bin/env python3
"""The HTML flame graph in a real browser: Debian's Chromium, headless, driven
over the W3C WebDriver protocol by chromedriver (plain HTTP and JSON, so the
standard library is the whole client).

A profile of known shape is turned into HTML by `ember report -o`, then the
test clicks, searches and switches views the way a user would, and reads what
the page shows: zooming into a frame, the table (sorting, searching), the
sandwich (callers above, callees below) and the flame graph's search. A
screenshot of each step is written to OUT_DIR.

  flamegraph_views.py EMBER_BINARY OUT_DIR
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

# main -> run -> caller_{a,b,c} -> leaf in 60:30:10, plus main -> init 5.
PROFILE = """\
main;run;caller_a;leaf 60
main;run;caller_b;leaf 30
main;run;caller_c;leaf 10
main;init 5
"""
TOTAL = 105


class WebDriver:
    """The few WebDriver commands the test needs."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                # Root needs --no-sandbox; a fixed window makes screenshots comparable.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000"],
            }}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)["value"]
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')[:500]}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, element):
        self.s("POST", f"/element/{element}/click", {})

    def type(self, element, text):
        self.s("POST", f"/element/{element}/value", {"text": text})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    ember, out_dir = sys.argv[1], sys.argv[2]
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            print(f"{tool} missing: scripts/install-deps.sh installs chromium and chromium-driver")
            return 1
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="ember-browser-")
    driver_proc = None
    wd = None
    try:
        folded = os.path.join(tmp, "profile.folded")
        with open(folded, "w") as f:
            f.write(PROFILE)
        html = os.path.join(tmp, "profile.html")
        r = subprocess.run([ember, "report", "-o", html, folded], capture_output=True, text=True)
        check(r.returncode == 0, f"ember report -o profile.html exits 0 ({r.stderr.strip()})")

        port = free_port()
        driver_proc = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        wd = WebDriver(port)
        wd.open("file://" + html)

        # --- the flame graph: click caller_b to zoom into it ---
        frame_rect = """
          var gs = document.querySelectorAll('#ember-flamegraph .frames g');
          for (var i = 0; i < gs.length; i++) {
            var t = gs[i].querySelector('text');
            if (t && t.textContent === arguments[0]) return gs[i].querySelector('rect');
          }
          return null;"""
        full = float(wd.js("return parseFloat(arguments[0].getAttribute('width'))", wd.js(frame_rect, "main")))
        rect = wd.js(frame_rect, "caller_b")
        check(rect is not None, "the flame graph has a caller_b box")
        before = float(wd.js("return parseFloat(arguments[0].getAttribute('width'))", rect))
        check(abs(before / full - 30 / TOTAL) < 0.01, f"caller_b is 30/105 of main's width ({before:.0f} of {full:.0f} px)")
        wd.screenshot(os.path.join(out_dir, "1-flame.png"))
        wd.click(rect[ELEMENT])
        after = float(wd.js("return parseFloat(arguments[0].getAttribute('width'))", rect))
        check(abs(after - full) < 1, f"clicking caller_b zooms it to the full width ({after:.0f} px)")
        check(not wd.js("return document.querySelector('.reset').classList.contains('hidden')"),
              "the Reset zoom button shows")
        hidden = wd.js("""var g = document.querySelectorAll('#ember-flamegraph .frames g'), n = 0;
                          for (var i = 0; i < g.length; i++) if (g[i].style.display === 'none') n++;
                          return n;""")
        check(hidden >= 3, f"frames outside caller_b are hidden ({hidden})")
        wd.screenshot(os.path.join(out_dir, "2-zoomed.png"))

        # --- the table ---
        wd.click(wd.find("button[data-view=table]"))
        rows = lambda: wd.js("""return Array.prototype.map.call(
            document.querySelectorAll('#ember-view-table tbody tr'),
            function (r) { return Array.prototype.map.call(r.cells, function (c) { return c.textContent; }); });""")
        t = rows()
        check(wd.js("return !document.getElementById('ember-view-table').hidden"), "the table view shows")
        check(len(t) == 7, f"the table lists 7 functions ({len(t)})")
        check(t and t[0][0] == "leaf" and t[0][1] == "100" and t[0][2] == "95.24%",
              f"sorted by self, leaf first with 100 (95.24%): {t[0] if t else None}")
        wd.click(wd.find("#ember-view-table th[data-sort=total]"))
        t = rows()
        check(t and t[0][0] == "main" and t[0][4] == "100.00%", f"sorted by total, main first at 100%: {t[0] if t else None}")
        order = [r[0] for r in t]
        check(order.index("caller_a") < order.index("caller_b") < order.index("caller_c"),
              f"callers in order of total: {order}")
        wd.type(wd.find("#ember-search"), "caller_")
        t = rows()
        check(sorted(r[0] for r in t) == ["caller_a", "caller_b", "caller_c"],
              f"searching 'caller_' leaves the three callers: {[r[0] for r in t]}")
        wd.screenshot(os.path.join(out_dir, "3-table.png"))

        # --- the sandwich of caller_b, from its row ---
        wd.click(wd.find("#ember-view-table tbody tr[data-function=caller_b]"))
        check(wd.js("return !document.getElementById('ember-view-sandwich').hidden"), "the sandwich view shows")
        frames = wd.js("""return Array.prototype.map.call(
            document.querySelectorAll('#ember-view-sandwich g.sw-frame'),
            function (g) { return [g.getAttribute('data-side'), g.getAttribute('data-name'),
                                   parseFloat(g.querySelector('rect').getAttribute('width')),
                                   parseFloat(g.querySelector('rect').getAttribute('y'))]; });""")
        by = {(side, name): (w, y) for side, name, w, y in frames}
        check(("callers", "caller_b") in by, "caller_b is the sandwich's middle row")
        check(("callers", "run") in by and ("callers", "main") in by, "its callers run and main are there")
        check(("callees", "leaf") in by, "its callee leaf is there")
        check(("callers", "leaf") not in by and ("callees", "run") not in by, "nothing else is")
        if ("callers", "run") in by and ("callers", "caller_b") in by and ("callees", "leaf") in by:
            check(by[("callers", "run")][1] < by[("callers", "caller_b")][1] < by[("callees", "leaf")][1],
                  "callers above, callees below")
            check(abs(by[("callees", "leaf")][0] - by[("callers", "caller_b")][0]) < 1,
                  "all of caller_b's time is in leaf: same width")
        tip = wd.js("""var g = document.querySelector('#ember-view-sandwich g.sw-frame[data-name=leaf]');
                       return g ? g.querySelector('title').textContent : '';""")
        check("30 samples" in tip and "28.57% of all" in tip and "100.00% of caller_b" in tip,
              f"leaf's tooltip gives its value and shares: {tip!r}")
        wd.screenshot(os.path.join(out_dir, "4-sandwich.png"))

        # --- back to the flame graph: the search box searched it too ---
        wd.click(wd.find("button[data-view=flame]"))
        matched = wd.js("return document.querySelector('#ember-flamegraph .matched').textContent")
        check(matched.startswith("Matched: 95.24% (3 frames)"), f"the flame graph's search matched the callers: {matched!r}")
        wd.screenshot(os.path.join(out_dir, "5-flame-search.png"))
    finally:
        if wd:
            wd.quit()
        if driver_proc:
            driver_proc.terminate()
            driver_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"screenshots in {out_dir}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
