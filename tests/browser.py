"""Headless Chromium (Debian's), driven over its DevTools protocol: a page loaded as a person's browser
loads it, trusting a test CA, with what it fetched and every error it reported on the way."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as websocket_connect

from .stack import started

CHROMIUM = "chromium"
START_TIMEOUT_S = 30
LOAD_TIMEOUT_S = 30


@dataclass
class PageLoad:
    errors: list[str]  # console errors, uncaught exceptions, failed or blocked loads
    text: str | None  # the text of the watched element once the page's script has changed it
    responses: dict[str, dict[str, Any]]  # by URL: status, protocol ("h2", "http/1.1") and MIME type


@dataclass
class DevTools:
    """One page's DevTools session: calls answered in order, the events seen meanwhile kept."""

    connection: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.connection.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=LOAD_TIMEOUT_S))
            if message.get("id") == call_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = LOAD_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(event["method"] == method for event in self.events):
            self.events.append(json.loads(self.connection.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def drain(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                self.events.append(json.loads(self.connection.recv(timeout=left)))


def trust_store(home: Path, root: Path) -> None:
    """Chromium's trust store on Linux, NSS's database under $HOME, trusting `root` for web sites."""
    database = f"sql:{home / '.pki' / 'nssdb'}"
    (home / ".pki" / "nssdb").mkdir(parents=True)
    for command in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "test CA", "-i", str(root)]):
        subprocess.run(["certutil", "-d", database, *command], check=True, capture_output=True)


@contextlib.contextmanager
def chromium(home: Path, resolve: dict[str, str]) -> Iterator[int]:
    """Chromium, headless, with `home` as its $HOME and each name in `resolve` at the address given;
    yields its DevTools port. Stopped afterwards, with every process it started (its own group)."""
    profile = home / "profile"
    rules = ",".join(f"MAP {name} {address}" for name, address in resolve.items())
    command = [
        CHROMIUM, "--headless=new", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--host-resolver-rules={rules}",
        *(["--no-sandbox"] if os.geteuid() == 0 else []),  # its sandbox refuses to run as root
        "about:blank",
    ]  # fmt: skip
    log = home / "chromium.log"
    with started(command, log, env={**os.environ, "HOME": str(home)}) as process:
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not active_port.exists() or not active_port.read_text().strip():
            assert process.poll() is None, f"chromium exited: {log.read_text()}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        yield int(active_port.read_text().split()[0])


def errors_in(events: list[dict[str, Any]]) -> list[str]:
    """What a person would see in the console: errors logged, exceptions, loads failed or blocked."""
    requested = {
        event["params"]["requestId"]: event["params"]["request"]["url"]
        for event in events
        if event["method"] == "Network.requestWillBeSent"
    }
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            said = (str(arg.get("value", arg.get("description"))) for arg in params["args"])
            errors.append("console: " + " ".join(said))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"exception: {details.get('exception', {}).get('description', details['text'])}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
        elif method == "Network.loadingFailed":
            reason = params.get("blockedReason") or params.get("corsErrorStatus") or params["errorText"]
            errors.append(f"failed: {requested.get(params['requestId'], '?')}: {reason}")
    return errors


@contextlib.contextmanager
def open_page(url: str, resolve: dict[str, str], home: Path) -> Iterator[DevTools]:
    """`url` loaded in headless Chromium; yields its DevTools session while the page stays open."""
    with chromium(home, resolve) as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            [page] = [target for target in json.load(response) if target["type"] == "page"]
        with websocket_connect(page["webSocketDebuggerUrl"], max_size=None) as connection:
            tools = DevTools(connection)
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.call(f"{domain}.enable")
            tools.call("Page.navigate", url=url)
            tools.wait_for("Page.loadEventFired")
            yield tools


def element(tools: DevTools, element_id: str, attribute: str = "textContent") -> str | None:
    """An element's text (or another of its properties, e.g. dataset.opens) as the page has it now."""
    expression = f"String(document.getElementById({json.dumps(element_id)})?.{attribute} ?? '') || null"
    return tools.call("Runtime.evaluate", expression=expression)["result"].get("value")


def page_load(url: str, resolve: dict[str, str], root: Path, home: Path, element_id: str, pending: str) -> PageLoad:
    """`url` loaded in headless Chromium that trusts `root`, until the text of `element_id` (which
    the page's script fills in) is no longer `pending`, what the HTML says, or the load times out."""
    trust_store(home, root)
    with open_page(url, resolve, home) as tools:
        text = element(tools, element_id)
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while text == pending and time.monotonic() < deadline:
            tools.drain(0.2)
            text = element(tools, element_id)
        tools.drain(0.5)
    responses = {
        event["params"]["response"]["url"]: {
            "status": event["params"]["response"]["status"],
            "protocol": event["params"]["response"].get("protocol"),
            "mime_type": event["params"]["response"]["mimeType"],
        }
        for event in tools.events
        if event["method"] == "Network.responseReceived"
    }
    return PageLoad(errors_in(tools.events), text, responses)
