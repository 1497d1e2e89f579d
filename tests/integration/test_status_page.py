"""The status page in a real headless Chromium, driven through ChromeDriver's W3C WebDriver protocol.

Needs Chromium and ChromeDriver (Debian: ``apt-get install chromium chromium-driver``); without them
the test fails and says so.
"""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"]


class WebDriver:
    """The few WebDriver commands the test needs, over plain HTTP."""

    def __init__(self, port: int, user_data_dir: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": CHROMIUM_ARGS + [f"--user-data-dir={user_data_dir}"]},
        }}})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def open(self, url):
        self._call("POST", f"{self.session}/url", {"url": url})

    def element(self, selector):
        found = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": selector})
        return next(iter(found.values()))

    def text(self, selector):
        return self._call("GET", f"{self.session}/element/{self.element(selector)}/text")

    def click(self, selector):
        # The page redraws its tables every second: an element found just before a redraw is stale
        # by the click (W3C answers 404 "stale element reference"); find it again.
        for attempt in range(5):
            try:
                self._call("POST", f"{self.session}/element/{self.element(selector)}/click", {})
                return
            except urllib.error.HTTPError as error:
                if error.code != 404 or attempt == 4:
                    raise
                time.sleep(0.05)

    def type(self, selector, text):
        self._call("POST", f"{self.session}/element/{self.element(selector)}/value", {"text": text})

    def execute(self, script, *args):
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def enabled(self, selector):
        return self._call("GET", f"{self.session}/element/{self.element(selector)}/enabled")

    def resize(self, width, height):
        self._call("POST", f"{self.session}/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        import base64

        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    def wait_text(self, selector, expected, timeout=10.0):
        deadline = time.monotonic() + timeout
        text = None
        while time.monotonic() < deadline:
            text = self.text(selector)
            if expected in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{selector} shows {text!r}, expected {expected!r}")

    def quit(self):
        self._call("DELETE", self.session)


@pytest.fixture
def browser(tmp_path, free_ports):
    driver_binary = shutil.which("chromedriver")
    if driver_binary is None or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.fail("the status-page test needs Chromium and ChromeDriver: apt-get install chromium chromium-driver")
    port = free_ports()
    driver = subprocess.Popen([driver_binary, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                driver.kill()
                raise
            time.sleep(0.1)
    web = WebDriver(port, str(tmp_path / "chromium"))
    yield web
    web.quit()
    driver.terminate()
    driver.wait(10)


def test_status_page_when_opened_shows_state_sessions_and_kills_only_with_the_token(stack, browser, tmp_path):
    client = stack.client()
    cl_ord_id = client.new_order("AAPL", "1", "10", "190.01")
    assert client.wait_report(cl_ord_id, exec_type="F", timeout=10), \
        f"no fill; the client saw {client.reports_for(cl_ord_id)}, the gateway {stack.gateway.status()}"
    resting = client.new_order("AAPL", "1", "3", "185.00")
    assert client.wait_report(resting, exec_type="0", timeout=10)
    client.new_order("NOPE", "1", "1", "1.00")
    browser.open(f"http://127.0.0.1:{stack.config.admin.port}/")
    browser.wait_text("#risk", "NORMAL")
    assert stack.config.sha256[:16] in browser.wait_text("#build", "version ")
    assert browser.text("#updated") != "never"
    sessions = browser.wait_text("#sessions", "simvenue")
    assert "client1" in sessions and "yes" in sessions and "ready" in sessions
    browser.wait_text("#positions", "AAPL")
    assert "10" in browser.text("#positions")
    assert "AAPL buy 3 185 0 New" in browser.wait_text("#orders", "AAPL")
    browser.wait_text("#rejects", "UNKNOWN_INSTRUMENT")
    limits = browser.wait_text("#limits", "worst-case position AAPL")
    assert "13.00 / 20,000.00" in limits and "gross exposure" in limits and "orders today" in limits
    assert "AAPL" in browser.wait_text("#quotes", "live")
    assert browser.text("#accepted") == "2" and browser.text("#rejected") == "1"
    deadline = time.monotonic() + 10                                # the chart draws from two points on
    while browser.execute("return document.querySelectorAll('#chart polyline').length") < 2:
        assert time.monotonic() < deadline, browser.text("#chart-legend")
        time.sleep(0.2)
    assert browser.text("#chart-legend").startswith("last ")

    browser.resize(420, 900)                                        # a phone: nothing wider than the screen
    assert browser.execute("return document.documentElement.scrollWidth") <= 420
    browser.resize(1200, 900)

    browser.click("#kill")                                          # no token: nothing happens
    browser.wait_text("#message", "enter the admin token first")
    browser.type("#token", "wrong-token")
    browser.click("#kill")
    browser.click("#kill-confirm")                                  # no reason: nothing happens
    browser.wait_text("#message", "give a reason for the kill")
    browser.type("#kill-reason", "drill")
    browser.click("#kill-confirm")
    browser.wait_text("#message", "refused")
    assert stack.gateway.book.risk_state == 0

    browser.type("#token", "\ue009a\ue003")                        # select all, delete
    browser.type("#token", "demo-admin-token")
    browser.click("#cancel-all")
    browser.wait_text("#confirm-text", "Cancel every open order")
    browser.click("#confirm-no")
    browser.wait_text("#message", "nothing done")
    assert stack.gateway.book.live_orders == 1
    browser.click("#cancel-all")
    browser.click("#confirm-yes")
    browser.wait_text("#message", "cancel-all: done (1 cancels sent)")
    assert client.wait_report(resting, exec_type="4", timeout=10) is not None

    browser.click("#kill")
    browser.type("#kill-reason", "runaway strategy on desk 3")
    browser.click("#kill-confirm")
    browser.wait_text("#risk", "KILL_SWITCH")
    assert stack.gateway.book.risk_state == 3
    assert browser.wait_text("#reason", "runaway strategy on desk 3")
    assert "by admin" in browser.wait_text("#since", "since 20")
    assert not browser.enabled("#kill") and browser.enabled("#resume")
    colour = browser.execute("return getComputedStyle(document.getElementById('banner')).backgroundColor")
    assert colour == "rgb(255, 23, 68)"                             # the most alarming colour of the page
    browser.screenshot(tmp_path / "status-page.png")
    assert (tmp_path / "status-page.png").stat().st_size > 10_000
    record = next(record for record in stack.gateway.audit.records() if record.get("event") == "admin_command"
                  and record["command"] == "kill")
    assert (record["actor"], record["via"], record["reason"]) == ("admin", "status page", "runaway strategy on desk 3")

    browser.click("#resume")
    browser.click("#confirm-yes")
    browser.wait_text("#risk", "NORMAL")

    # One client's kill switch, and the restricted list, from the page.
    assert stack.gateway.wait_for_venues(15, ready=True)           # back from the global kill first
    browser.wait_text("#clients", "client1")
    browser.click("#kill-client1")
    browser.wait_text("#kill-question", "Kill client client1?")
    browser.type("#kill-reason", "desk 3 only")
    browser.click("#kill-confirm")
    assert "KILLED: desk 3 only" in browser.wait_text("#clients", "KILLED")
    assert stack.gateway.book.client(0)["killed"] and stack.gateway.book.risk_state == 0
    refused = client.new_order("AAPL", "1", "1", "185.00")
    assert client.wait_report(refused, exec_type="8", timeout=10).text.startswith("CLIENT_KILLED")
    browser.click("#resume-client1")
    browser.wait_text("#confirm-text", "Resume client client1?")
    browser.click("#confirm-yes")
    browser.wait_text("#message", "resume: done")
    assert not stack.gateway.book.client(0)["killed"]
    browser.type("#restrict-symbol", "AAPL")
    browser.type("#restrict-client", "client2")
    browser.click("#restrict")
    browser.click("#confirm-yes")
    browser.wait_text("#restricted", "client2: AAPL")
    record = [record for record in stack.gateway.audit.records() if record.get("event") == "restricted_list_changed"]
    assert record and (record[-1]["client"], record[-1]["actor"]) == ("client2", "admin")
