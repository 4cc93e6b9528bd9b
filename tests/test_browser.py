"""A real browser against a real server: CORS from another origin, the docs under their CSP.

Headless Chromium (Debian's ``chromium`` package, driven by playwright-python; never a
browser downloaded by ``playwright install``) loads pages from two static servers on other
ports of 127.0.0.1, that is other origins, while ``mixedfit serve`` runs with
``MIXEDFIT_CORS_ORIGINS`` naming one of them. From the allowed page a script uploads a CSV,
fits a model, long-polls it and predicts (with a bearer key when the build has
``mixedfit keys``); from the other page every call is refused by the browser, and a
``no-cors`` form post, which a browser sends without asking, is refused by the server.
Skipped only where no Chromium is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import free_port
from tests.processes import stop

pytestmark = pytest.mark.slow

CHROMIUM = next((path for path in (os.environ.get("MIXEDFIT_TEST_CHROMIUM"),
                                   shutil.which("chromium"), shutil.which("chromium-browser"),
                                   "/usr/bin/chromium") if path and Path(path).exists()), None)
if CHROMIUM is None:
    pytest.skip("no Chromium installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
MOOD = ROOT / "tests" / "data" / "mood.csv"
KEY_PATTERN = re.compile(r"mf_[A-Za-z0-9_-]{16,}")
# R: predict(lm(Mood ~ Exercise + State, mood), data.frame(Exercise = c(2.3, 0),
#    State = c("B", "A"))), as the README's walk-through shows
EXPECTED_PREDICTIONS = [3.87364, 3.11747]


@dataclass
class Server:
    base: str
    log: Path
    key: str | None

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        all_headers = dict(headers or {})
        if self.key:
            all_headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                pass  # a line from outside the logging system (a crash report)
        return lines


def _run_cli(tmp_path: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _make_key(tmp_path: Path, env: dict[str, str]) -> str | None:
    """A new key of tenant ``browser`` when this build has `mixedfit keys`, else None."""
    made = _run_cli(tmp_path, env, "keys", "create", "--tenant", "browser")
    if made.returncode == 2 and "invalid choice" in made.stderr:
        return None  # no API keys in this build: the API is open
    assert made.returncode == 0, made.stderr
    found = KEY_PATTERN.search(made.stdout)
    assert found, made.stdout
    return found.group(0)


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two static page servers (two origins): the allowed one and another."""
    root = tmp_path / "pages"
    root.mkdir()
    (root / "index.html").write_text(
        "<!doctype html><html><head><title>frontend</title></head>"
        "<body><p>a frontend on another origin</p></body></html>", encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield tuple(f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def server(tmp_path: Path, pages: tuple[str, str]) -> Iterator[Server]:
    """`mixedfit serve` (API and embedded worker on a new SQLite file) allowing the first
    page origin, with JSON logs to a file."""
    allowed, _ = pages
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
    env.update({"MIXEDFIT_CORS_ORIGINS": allowed, "MIXEDFIT_LOG_FORMAT": "json",
                # the service of this checkout, whatever the virtualenv has installed
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                            env.get("PYTHONPATH")]))})
    migrated = _run_cli(tmp_path, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    key = _make_key(tmp_path, env)
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    running = Server(f"http://127.0.0.1:{port}", log, key)
    try:
        for _ in range(600):
            try:
                if running.call("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"serve exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("serve did not become ready")
        yield running
    finally:
        stop(process)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        # as root in a container Chromium's sandbox cannot start
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


# The frontend's script: every call a page would make, with the key when there is one.
FRONTEND = """async ({api, key, csv}) => {
  const auth = key ? {Authorization: `Bearer ${key}`} : {};
  const upload = await fetch(`${api}/v1/datasets?name=mood`, {
    method: "POST", headers: {...auth, "Content-Type": "text/csv",
                              "X-Request-ID": "browser-upload"}, body: csv});
  const dataset = await upload.json();
  const posted = await fetch(`${api}/v1/models`, {
    method: "POST", headers: {...auth, "Content-Type": "application/json"},
    body: JSON.stringify({dataset_id: dataset.id, formula: "Mood ~ Exercise + State"})});
  const location = posted.headers.get("Location");
  const fitRequestId = posted.headers.get("X-Request-ID");
  let model = await posted.json();
  for (let i = 0; i < 20 && !["succeeded", "failed"].includes(model.status); i++) {
    model = await (await fetch(`${api}${location}?wait=10`, {headers: auth})).json();
  }
  const predicted = await fetch(`${api}/v1/models/${model.id}/predictions`, {
    method: "POST", headers: {...auth, "Content-Type": "application/json"},
    body: JSON.stringify({records: [{Exercise: 2.3, State: "B"}, {Exercise: 0, State: "A"}]})});
  const missing = await fetch(`${api}/v1/models/no-such-model`, {headers: auth});
  return {
    upload: upload.status, uploadRequestId: upload.headers.get("X-Request-ID"),
    posted: posted.status, location, fitRequestId, status: model.status,
    predicted: predicted.status, predictions: (await predicted.json()).predictions,
    missing: missing.status, missingType: (await missing.json()).type,
  };
}"""

# The same calls from a page the server does not allow: each fetch must reject.
REFUSED = """async ({api, key}) => {
  const auth = key ? {Authorization: `Bearer ${key}`} : {};
  const outcomes = {};
  const attempt = async (name, call) => {
    try { await call(); outcomes[name] = "answered"; }
    catch (error) { outcomes[name] = error.name; }
  };
  await attempt("list", () => fetch(`${api}/v1/datasets`, {headers: auth}));
  await attempt("simple_get", () => fetch(`${api}/v1/datasets`));
  await attempt("upload", () => fetch(`${api}/v1/datasets?name=x`, {
    method: "POST", headers: {...auth, "Content-Type": "text/csv"}, body: "x,y\\n1,2\\n"}));
  // what the issue reported: a form post the browser sends without a preflight
  const form = new FormData();
  form.append("file", new Blob(["x,y\\n1,2\\n2,4\\n"], {type: "text/csv"}), "x.csv");
  await attempt("no_cors_form", () => fetch(`${api}/v1/datasets?name=sneaky`, {
    method: "POST", mode: "no-cors", body: form}));
  return outcomes;
}"""


def test_a_page_on_an_allowed_origin_uploads_fits_and_predicts(
        server: Server, pages: tuple[str, str], browser: Any) -> None:
    allowed, _ = pages
    page = browser.new_page()
    page.goto(f"{allowed}/index.html")
    result = page.evaluate(FRONTEND, {"api": server.base, "key": server.key,
                                      "csv": MOOD.read_text(encoding="utf-8")})
    assert result["upload"] == 201 and result["uploadRequestId"] == "browser-upload"
    assert result["posted"] == 202 and result["location"].startswith("/v1/models/")
    assert result["status"] == "succeeded", result
    assert result["predicted"] == 200
    assert result["predictions"] == pytest.approx(EXPECTED_PREDICTIONS, abs=1e-5)
    # a problem answer is readable by the page too (CORS headers on 4xx)
    assert result["missing"] == 404 and result["missingType"].endswith("not-found")

    # the fit's request id, which the page read, is in the server's JSON log: the access
    # line of that request and the embedded worker's lines of the fit it queued
    fit_id = result["fitRequestId"]
    assert re.fullmatch(r"[0-9a-f]{32}", fit_id)
    lines = server.log_lines()
    access = [line for line in lines if line["logger"] == "mixedfit.access"
              and line.get("request_id") == fit_id]
    assert [(line["method"], line["route"], line["status"]) for line in access] == [
        ("POST", "/v1/models", 202)]
    if server.key:
        assert access[0]["tenant"] == "browser"
    worker = [line for line in lines if line.get("job_id")]
    assert worker and all(line["request_id"] == fit_id for line in worker), worker
    model_id = result["location"].rsplit("/", 1)[1]
    assert {line["model_id"] for line in worker} == {model_id}
    assert any(f"model {model_id} fitted" in line["message"] for line in worker), worker


def test_a_page_on_another_origin_is_refused(server: Server, pages: tuple[str, str],
                                            browser: Any) -> None:
    _, other = pages
    page = browser.new_page()
    page.goto(f"{other}/index.html")
    outcomes = page.evaluate(REFUSED, {"api": server.base, "key": server.key})
    # the browser refuses the answers (no Access-Control-Allow-Origin for this origin)
    assert outcomes["list"] == outcomes["simple_get"] == outcomes["upload"] == "TypeError"
    # a no-cors post resolves to an opaque answer, but the server refused to act on it
    assert outcomes["no_cors_form"] == "answered"
    status, _, listing = server.call("GET", "/v1/datasets")
    assert status == 200 and listing["total"] == 0, listing


def test_docs_work_under_their_content_security_policy(server: Server, browser: Any) -> None:
    page = browser.new_page()
    violations: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    # every CSP violation of the page, whichever resource or script caused it
    page.add_init_script("""window.__violations = [];
      document.addEventListener("securitypolicyviolation",
        (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));""")
    response = page.goto(f"{server.base}/docs")
    assert response is not None and "content-security-policy" in response.headers
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() > 10
    # try a call from the docs, as a reader does: it answers under connect-src 'self'
    page.locator(".opblock-summary-path[data-path='/healthz']").first.click()
    page.locator("button.try-out__btn").first.click()
    page.locator("button.execute").first.click()
    page.wait_for_selector(".live-responses-table .response-col_status", timeout=30_000)
    status = page.locator(".live-responses-table .response .response-col_status").first
    assert status.inner_text().strip() == "200"
    # the Authorize dialog of the bearer scheme opens and takes a key
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input").first.fill("mf_" + "x" * 43)
    page.locator(".modal-ux button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").first.click()
    violations = page.evaluate("window.__violations")
    assert violations == [] and errors == [], (violations, errors)
    # the listener does see a violation when there is one: an injected inline script
    page.evaluate("""() => { const script = document.createElement("script");
      script.textContent = "window.__ran = true;"; document.head.appendChild(script); }""")
    page.wait_for_function("() => window.__violations.length > 0", timeout=5_000)
    assert page.evaluate("() => window.__ran === undefined")


def test_serve_names_no_server_software(server: Server) -> None:
    status, headers, _ = server.call("GET", "/healthz")
    assert status == 200
    names = {name.lower() for name in headers}
    assert "server" not in names
    assert {"x-request-id", "x-content-type-options", "referrer-policy",
            "content-security-policy"} <= names
