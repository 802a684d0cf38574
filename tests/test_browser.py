"""Headless Chromium opens the tree page and the report: nodes are there, clicking one shows its
details, and no console error or JS exception happens. Screenshots land in the test's tmp dir.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
fd 3, replies on fd 4, each message JSON ending in a NUL byte), so console errors, uncaught
exceptions and failed loads (a missing figure) are seen as the browser reports them.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import time

import pytest

from fabricate import LADDER, fabricate_tree
from matplotlib.image import imread
from test_report_xy import fabricate_xy_tree
from experiment_tree.html import write_tree_html
from reports.report import write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium")
                                        else None)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None,
                                 reason="headless Chromium not installed (apt-get install chromium)")]


class Browser:
    """Just enough of the DevTools protocol: open a page, evaluate JS, screenshot, collect errors."""

    def __init__(self, profile_dir, timeout_s=90.0):
        self.timeout_s = timeout_s
        cmd_r, self._cmd_w = os.pipe()     # we write commands; chromium reads them on fd 3
        self._out_r, out_w = os.pipe()     # chromium writes replies on fd 4
        os.set_inheritable(cmd_r, True)
        os.set_inheritable(out_w, True)

        def wire_fds():                    # in the child: put the pipes on fds 3 and 4
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", f"--user-data-dir={profile_dir}",
             "--remote-debugging-pipe", "--window-size=1400,1000", "about:blank"],
            # preexec runs before the child closes other fds, so 3 and 4 must be kept by number
            pass_fds=(cmd_r, out_w, 3, 4), preexec_fn=wire_fds, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        os.close(cmd_r)
        os.close(out_w)
        self._buf, self._next_id, self.events = b"", 0, []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer over the DevTools pipe in time")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"chromium closed the DevTools pipe; stderr:\n{err}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method):
        deadline = time.monotonic() + self.timeout_s
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def eval(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"JS in the test failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def errors(self):
        """Console errors, uncaught exceptions and failed loads seen so far."""
        self.eval("1")   # flush events queued before now
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                        for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')}")
        return out

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    ids = fabricate_tree(root / "ws")
    index = write_report(ids["workspace"], ladder=LADDER)
    tree = write_tree_html(ids["workspace"])
    return ids, tree, index, root


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def test_tree_page_renders_every_node_and_clicking_shows_details(pages, browser, tmp_path):
    ids, tree, _, _ = pages
    browser.open(tree.as_uri())
    assert browser.eval("document.body.getAttribute('data-ready')") == "yes", \
        "the page's script did not run to the end"
    rendered = browser.eval("""Array.from(document.querySelectorAll('svg.tree .node')).map(g => {
        const r = g.getBoundingClientRect();
        return [g.dataset.id, g.dataset.status, g.dataset.parent, r.width, r.height,
                getComputedStyle(g.querySelector('rect')).fill];
    })""")
    node_ids = [v for k, v in ids.items() if k not in ("question", "workspace")]
    assert sorted(int(r[0]) for r in rendered) == sorted(node_ids)
    for _id, _status, _parent, w, h, _fill in rendered:
        assert w > 50 and h > 20, "a node is not drawn at a visible size"
    by_id = {int(r[0]): r for r in rendered}
    assert by_id[ids["crash"]][1] == "crash" and by_id[ids["better"]][2] == str(ids["baseline"])
    assert by_id[ids["better"]][5] != by_id[ids["worse"]][5], "verdicts must differ in colour"
    # click the crashed node: the details panel shows it with its error
    browser.eval(f"document.getElementById('node-{ids['crash']}')"
                 ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert browser.eval("document.getElementById('details').dataset.node") == str(ids["crash"])
    details = browser.eval("document.getElementById('details').innerText")
    assert "RuntimeError: CUDA out of memory" in details and "blocks: int = 40" in details
    shot = browser.screenshot(tmp_path / "tree.png")
    assert shot.stat().st_size > 10_000
    assert browser.eval("document.getElementById('js-errors').textContent") == ""
    assert browser.errors() == []


def test_report_page_renders_figures_table_and_tree_without_errors(pages, browser, tmp_path):
    ids, _, index, _ = pages
    browser.open(index.as_uri())
    assert browser.eval("document.body.getAttribute('data-ready')") == "yes"
    images = browser.eval("""Array.from(document.querySelectorAll('img.fig')).map(i =>
        [i.getAttribute('src'), i.complete, i.naturalWidth])""")
    assert len(images) >= 4
    for src, complete, width in images:
        assert complete and width > 100, f"figure {src} did not load"
    rows = browser.eval("Array.from(document.querySelectorAll('#nodes tbody tr')).map(r => r.id)")
    node_ids = [v for k, v in ids.items() if k not in ("question", "workspace")]
    assert sorted(rows) == sorted(f"row-{i}" for i in node_ids)
    assert browser.eval("document.querySelectorAll('#report-tree .node').length") == len(node_ids)
    browser.eval(f"document.querySelector('#report-tree #node-{ids['worse']}')"
                 ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert browser.eval("document.querySelector('tr.hl').id") == f"row-{ids['worse']}"
    assert "yes: lr 0.02" in browser.eval("document.getElementById('answer').innerText")
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
    assert browser.eval("document.getElementById('js-errors').textContent") == ""
    assert browser.errors() == []


def test_the_browser_check_catches_a_broken_page(pages, browser, tmp_path):
    """The checks above can fail: a page with a JS error and a missing figure is caught."""
    bad = tmp_path / "bad.html"
    page = pages[2].read_text().replace("document.body.setAttribute('data-ready', 'yes');",
                                        "undefinedFunction();")
    assert 'src="figures/learning_curves.png"' in page
    bad.write_text(page.replace('src="figures/learning_curves.png"', 'src="figures/missing.png"'))
    browser.open(bad.as_uri())
    assert browser.eval("document.body.getAttribute('data-ready')") is None
    assert "undefinedFunction" in browser.eval("document.getElementById('js-errors').textContent")
    errors = browser.errors()
    assert any("undefinedFunction" in e for e in errors), errors
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in errors), errors


def test_xy_report_shows_the_figure_above_the_tree(tmp_path_factory, browser, tmp_path):
    """Issue 13's acceptance: an x/y experiment's report opens with the figure (intervals drawn),
    above the tree, and the page is really painted (the screenshot is not blank)."""
    ids = fabricate_xy_tree(tmp_path_factory.mktemp("xy_browser") / "ws")
    index = write_report(ids["workspace"], ladder=LADDER)
    browser.open(index.as_uri())
    assert browser.eval("document.body.getAttribute('data-ready')") == "yes"
    fig = browser.eval("""(() => {
        const i = document.querySelector('#answer img.fig[alt^="x/y figure"]');
        if (!i) return null;
        const r = i.getBoundingClientRect();
        return [i.alt, i.complete, i.naturalWidth, r.left + scrollX, r.top + scrollY, r.width, r.height];
    })()""")
    assert fig is not None, "no x/y figure in the answer section"
    alt, complete, natural, left, top, width, height = fig
    assert alt == "x/y figure: elo against mcts.c_puct with 95% intervals"
    assert complete and natural > 500 and width > 300 and height > 200
    order = browser.eval("""Array.from(document.querySelectorAll('main section h2, #xy img'))
        .map(el => [el.tagName === 'IMG' ? 'xy' : el.textContent,
                    el.getBoundingClientRect().top + scrollY])""")
    names = [n for n, _ in order]
    assert names[:3] == ["Answer", "xy", "Experiment tree"], names
    tops = [t for _, t in order]
    assert tops == sorted(tops), order
    assert "rises with mcts.c_puct" in browser.eval("document.querySelector('#xy .trend').innerText")
    shot = browser.screenshot(tmp_path / "xy_report.png")
    img = imread(shot)[..., :3]
    assert img.shape[0] > top + height and img.std() > 0.05, "the screenshot is blank"
    crop = img[int(top):int(top + height), int(left):int(left + width)]
    coloured = (crop.std(axis=2) > 0.15).mean()       # error bars, points and lines in colour
    assert 0.002 < coloured < 0.5, coloured
    assert browser.eval("document.getElementById('js-errors').textContent") == ""
    assert browser.errors() == []
