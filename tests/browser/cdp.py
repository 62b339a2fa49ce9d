"""A small Chrome DevTools protocol driver for the browser tests.

Starts Debian's chromium headless with a throw-away profile, talks CDP over
its browser WebSocket (python3-websocket), and gives each user a browser
context of their own (Target.createBrowserContext: separate cookies and
sessionStorage, like separate incognito windows) so several logins share
one chromium. Chromium is always killed when the `with` block ends, and
gets PR_SET_PDEATHSIG, so a test killed by ctest's timeout leaves nothing
behind.

Each Page records what went wrong in it: uncaught exceptions, console
errors (Content-Security-Policy violations among them) and requests to any
host but the one under test, so a test can assert the page ran clean.
Waits poll a JavaScript condition; a timeout raises with what was awaited
and the last value seen.
"""
import base64
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

try:
    import websocket  # python3-websocket (websocket-client)
except ImportError:  # a Python other than Debian's (pyenv): use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import websocket

CHROMIUM = os.environ.get("PITSTOP_CHROMIUM", "/usr/bin/chromium")

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgrp()


class CDPError(Exception):
    pass


class Browser:
    """One headless chromium. Use as a context manager."""

    def __init__(self, log_dir=None, timeout=20.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="pitstop-chromium-")
        self.log_path = os.path.join(log_dir or self.profile, "chromium.log")
        self.proc = None
        self.ws = None
        self.next_id = 0
        self.events = []  # (session_id, method, params) not yet consumed
        self.pages = []

    def __enter__(self):
        try:
            self._launch()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _launch(self):
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-port=0", "--user-data-dir=" + self.profile,
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--mute-audio",
                "--password-store=basic", "--use-mock-keychain",
                "--lang=en-US", "about:blank"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CDPError("chromium exited with %s before it listened (log: %s):\n%s"
                               % (self.proc.returncode, self.log_path, self._log_tail()))
            try:
                with open(port_file) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        else:
            raise CDPError("no %s after 30 s (log: %s):\n%s"
                           % (port_file, self.log_path, self._log_tail()))
        url = "ws://127.0.0.1:%s%s" % (lines[0].strip(), lines[1].strip())
        self.ws = websocket.create_connection(url, timeout=self.timeout,
                                              suppress_origin=True)

    def _log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""

    # --- protocol --------------------------------------------------------
    def send(self, method, params=None, session=None, timeout=None):
        """Sends one command and returns its result; events that arrive
        meanwhile are kept for pump()."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("%s: no answer in %.0f s" % (method, timeout or self.timeout))
            m = self._recv(left)
            if m is None:
                continue
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise CDPError("%s: %s" % (method, m["error"].get("message", m["error"])))
                return m.get("result", {})

    def _recv(self, timeout):
        self.ws.settimeout(max(0.01, timeout))
        try:
            raw = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        m = json.loads(raw)
        if "method" in m:
            self._event(m.get("sessionId"), m["method"], m.get("params", {}))
            return None
        return m

    def _event(self, session, method, params):
        for p in self.pages:
            if p.session == session:
                p._event(method, params)

    def pump(self, seconds=0.0):
        """Reads the events that are waiting (for up to `seconds`)."""
        deadline = time.monotonic() + seconds
        while True:
            self._recv(max(0.01, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    def new_page(self, width=1280, height=800, mobile=False, scale=1):
        """A tab in a fresh browser context (cookies and storage of its own)."""
        ctx = self.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank",
                                                   "browserContextId": ctx})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        page = Page(self, ctx, target, session)
        self.pages.append(page)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable", session=session)
        page.set_viewport(width, height, mobile, scale)
        return page

    def close(self):
        if self.ws:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.proc:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            try:  # its zygote and renderers are in its process group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
            self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """A tab. Errors it saw: self.exceptions, self.console_errors,
    self.foreign_requests (hosts other than the allowed one)."""

    def __init__(self, browser, context, target, session):
        self.b = browser
        self.context = context
        self.target = target
        self.session = session
        self.exceptions = []
        self.console_errors = []
        self.requests = []  # (method, url) of every request the page made
        self.statuses = {}  # url -> last HTTP status

    def _event(self, method, p):
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            ex = d.get("exception", {})
            self.exceptions.append(ex.get("description") or d.get("text"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                for a in p.get("args", [])))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            # Failed loads (a 404 the page expects) are judged by status instead.
            if e.get("level") == "error" and e.get("source") != "network":
                self.console_errors.append("%s: %s" % (e.get("source"), e.get("text")))
        elif method == "Network.requestWillBeSent":
            r = p.get("request", {})
            self.requests.append((r.get("method"), r.get("url")))
        elif method == "Network.responseReceived":
            r = p.get("response", {})
            self.statuses[r.get("url")] = r.get("status")

    def send(self, method, params=None, timeout=None):
        return self.b.send(method, params, self.session, timeout)

    def set_viewport(self, width, height, mobile=False, scale=1):
        self.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile})
        if mobile:
            self.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})

    def goto(self, url, timeout=20):
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("navigating to %s: %s" % (url, r["errorText"]))
        self.wait("document.readyState === 'complete'", timeout, "%s to load" % url)

    def eval(self, expr, await_promise=True):
        """The value of a JavaScript expression (JSON-able), promises awaited."""
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("evaluating %s: %s" % (expr[:200], d.get("exception", {}).get(
                "description") or d.get("text")))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=15, what=None, interval=0.1):
        """Polls expr until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expr)
            except CDPError as e:  # a navigation in between
                last = str(e)
                if "Cannot find context" not in last and "Execution context" not in last:
                    raise
            if last:
                return last
            self.b.pump(interval)
        raise AssertionError("timed out after %.0f s waiting for %s (last: %r; url %s)"
                             % (timeout, what or expr, last, self.url()))

    @staticmethod
    def js(s):
        return json.dumps(s)

    def wait_selector(self, sel, timeout=15, visible=True):
        cond = "document.querySelector(%s)" % self.js(sel)
        if visible:
            cond = "(e => e && e.getClientRects().length > 0 && !e.closest('[hidden]'))(%s)" % cond
        return self.wait("!!" + cond, timeout, "selector %s" % sel)

    def exists(self, sel):
        return self.eval("!!document.querySelector(%s)" % self.js(sel))

    def text(self, sel):
        return self.eval("(e => e ? e.textContent : null)(document.querySelector(%s))" % self.js(sel))

    def texts(self, sel):
        return self.eval("Array.from(document.querySelectorAll(%s), e => e.textContent.trim())"
                         % self.js(sel))

    def url(self):
        try:
            return self.eval("location.href")
        except Exception:
            return "?"

    def focus(self, sel):
        self.eval("document.querySelector(%s).focus()" % self.js(sel))

    def type(self, sel, text):
        """Focuses sel and types text as keyboard input would insert it."""
        self.focus(sel)
        self.send("Input.insertText", {"text": text})

    KEYS = {"Enter": (13, "\r"), "Tab": (9, None), "Escape": (27, None), "Space": (32, " ")}

    def press(self, key, shift=False):
        code, text = self.KEYS[key]
        base = {"key": " " if key == "Space" else key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code,
                "modifiers": 8 if shift else 0}
        down = dict(base, type="keyDown" if text else "rawKeyDown")
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    def active(self):
        """A short description of the focused element: tag#id.class or text."""
        return self.eval("(e => e ? e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + "
                         "(e.getAttribute('href') ? '[' + e.getAttribute('href') + ']' : '') : null)"
                         "(document.activeElement)")

    def click(self, sel):
        """A real mouse click in the middle of the element sel."""
        box = self.eval("(e => { if (!e) return null; e.scrollIntoView({block: 'center'}); "
                        "const r = e.getBoundingClientRect(); "
                        "return [r.left + r.width / 2, r.top + r.height / 2]; })"
                        "(document.querySelector(%s))" % self.js(sel))
        if not box:
            raise AssertionError("click: no element %s on %s" % (sel, self.url()))
        for t in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": t, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def screenshot(self, path, full=False):
        """A PNG of the viewport, or of the whole page (full)."""
        self.b.pump(0.1)
        params = {"format": "png"}
        if full:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", params)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path

    def fetch(self, path, method="GET", bearer=None):
        """fetch() from inside the page (its cookies): [status, body text]."""
        headers = {"Authorization": "Bearer " + bearer} if bearer else {}
        return self.eval("fetch(%s, {method: %s, headers: %s, credentials: 'same-origin'})"
                         ".then(async r => [r.status, await r.text()])"
                         % (self.js(path), self.js(method), json.dumps(headers)))

    def foreign_requests(self, origin):
        """Requests to anything but origin (and data:/about:/blob: URLs)."""
        host = urllib.parse.urlsplit(origin).netloc
        out = []
        for method, url in self.requests:
            u = urllib.parse.urlsplit(url)
            if u.scheme in ("data", "about", "blob"):
                continue
            if u.netloc != host:
                out.append("%s %s" % (method, url))
        return out

    def close(self):
        try:
            self.b.send("Target.closeTarget", {"targetId": self.target}, timeout=5)
            self.b.send("Target.disposeBrowserContext", {"browserContextId": self.context},
                        timeout=5)
        except Exception:
            pass
        if self in self.b.pages:
            self.b.pages.remove(self)
