"""HTTPS at the edge (tls=acme), proven with real parts: the generated compose stack on Docker, with
Pebble, Let's Encrypt's test CA, as its ACME server on the stack's network, validating the http-01
challenge against the generated nginx for real; then, from this machine, Debian's testssl.sh, nghttp2's
h2load, a WebSocket and an event stream over TLS, headless Chromium trusting Pebble's root, and a
renewal while requests keep coming. And tls=files: a team's own pair, replaced under a running nginx."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from websockets.sync.client import connect as websocket_connect

from pyserve_template.baking import free_port

from .browser import page_load
from .conftest import bake_with
from .containers import access_lines, compose_stack

pytestmark = [pytest.mark.e2e, pytest.mark.container]

DOMAIN = "pyserve.test"
PEBBLE_IMAGE = "ghcr.io/letsencrypt/pebble:2.10.0"
# testssl.sh 3.2 runs on the stack's network, where DOMAIN is nginx (3.0, Debian stable's, still rates
# a server that lets the client choose among equally strong ciphers HIGH: Mozilla advises just that).
TESTSSL_IMAGE = "ghcr.io/testssl/testssl.sh:3.2.4"
# Pebble's profiles, named as Let's Encrypt's: classic, 90 days; shortlived, so short here that the
# acme service's loop renews it while the test watches. nginx serves a new certificate within 30 s
# of its files changing (templates/tls/policy.conf), well inside half this lifetime, when lego renews.
SHORT_LIFETIME_S = 100
PROFILES = {"classic": 90 * 24 * 3600, "shortlived": SHORT_LIFETIME_S}
ACME_CHECK_INTERVAL_S = 5
RENEWAL_TIMEOUT_S = 4 * SHORT_LIFETIME_S
LOAD_CLIENTS = 4


@dataclass
class Edge:
    stack: ModuleType  # the project's ComposeStack
    https_port: int
    pebble_root: Path  # the root of the certificates Pebble issues, as a client's trust store
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ssl.create_default_context(cafile=str(self.pebble_root))

    def connect(self, server_name: str = DOMAIN) -> ssl.SSLSocket:
        """A TLS connection to the edge as a client that resolved `server_name` to it."""
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=10)
        return self.context.wrap_socket(raw, server_hostname=server_name)

    def get(self, path: str) -> tuple[http.client.HTTPResponse, bytes, dict]:
        """One request on a new connection: the response, its body and the certificate it came with."""
        connection = http.client.HTTPSConnection(DOMAIN, self.https_port, context=self.context, timeout=10)
        connection.sock = self.connect()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response, response.read(), connection.sock.getpeercert()
        finally:
            connection.close()

    def url(self, path: str) -> str:
        return f"https://{DOMAIN}:{self.https_port}{path}"


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def certificate_authority(directory: Path, ca: str) -> Path:
    """A CA of the test's own: ca.pem and ca.key in `directory`."""
    openssl(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", f"/CN={ca} test CA", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")  # fmt: skip
    return directory / f"{ca}.pem"


def issue(directory: Path, ca: str, name: str, host: str) -> tuple[Path, Path]:
    """A certificate for `host` that the CA signed: name.pem and name.key in `directory`."""
    openssl(directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={host}", "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
    (directory / f"{name}.ext").write_text(f"subjectAltName=DNS:{host}\n")
    openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")  # fmt: skip
    return directory / f"{name}.pem", directory / f"{name}.key"


def pebble_files(directory: Path) -> None:
    """Pebble's config: its directory on 14000 (HTTPS), its management API on 15000, and the
    http-01 validations made to nginx's port in its container, 8080."""
    # Pebble's own HTTPS, which lego must trust (Pebble's repository ships a minica pair for this).
    certificate_authority(directory, "pebble-ca")
    issue(directory, "pebble-ca", "pebble", "pebble")
    for path in directory.iterdir():
        path.chmod(0o644)  # Pebble runs as an unprivileged user in its container
    profiles = {name: {"description": name, "validityPeriod": seconds} for name, seconds in PROFILES.items()}
    config = {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/pebble/pebble.pem",
        "privateKey": "/pebble/pebble.key",
        "httpPort": 8080,
        "tlsPort": 5001,
        "externalAccountBindingRequired": False,
        "keyAlgorithm": "ecdsa",
        "profiles": profiles,
    }
    (directory / "config.json").write_text(json.dumps({"pebble": config}))


def pebble_override(directory: Path, management_port: int) -> Path:
    """Pebble on the stack's network, nginx answering to DOMAIN there, and lego pointed at Pebble."""
    override = {
        "services": {
            "pebble": {
                "image": PEBBLE_IMAGE,
                "command": ["-config", "/pebble/config.json"],
                # No random wait before each validation: the real checks, minus the sleeps.
                "environment": {"PEBBLE_VA_NOSLEEP": "1"},
                "volumes": [f"{directory}:/pebble:ro"],
                "ports": [f"127.0.0.1:{management_port}:15000"],
            },
            "nginx": {"networks": {"default": {"aliases": [DOMAIN]}}},
            "acme": {
                "environment": {
                    "ACME_DIRECTORY": "https://pebble:14000/dir",
                    "LEGO_CA_CERTIFICATES": "/pebble/pebble-ca.pem",
                },
                "volumes": [f"{directory / 'pebble-ca.pem'}:/pebble/pebble-ca.pem:ro"],
                "depends_on": {"pebble": {"condition": "service_started"}},
            },
        }
    }
    path = directory / "compose.pebble.yaml"
    path.write_text(yaml.safe_dump(override))
    return path


def pebble_root(management_port: int, into: Path) -> Path:
    """The root Pebble made at start (its management API), which signs what it issues."""
    context = ssl.create_default_context(cafile=str(into / "pebble-ca.pem"))
    context.check_hostname = False  # the certificate names "pebble", its name on the stack's network
    url = f"https://127.0.0.1:{management_port}/roots/0"
    for _ in range(50):
        with contextlib.suppress(OSError), urllib.request.urlopen(url, context=context, timeout=5) as response:
            root = into / "pebble-root.pem"
            root.write_bytes(response.read())
            return root
        time.sleep(0.2)
    raise AssertionError(f"Pebble's management API at {url} did not answer")


@pytest.fixture(scope="module")
def edge(cookies_session, docker, tmp_path_factory) -> Iterator[Edge]:
    project = bake_with(cookies_session, {"tls": "acme"})
    directory = tmp_path_factory.mktemp("pebble")
    directory.chmod(0o755)
    pebble_files(directory)
    management_port = free_port()
    override = pebble_override(directory, management_port)
    with compose_stack(project, docker, "tls-edge", override, images=(PEBBLE_IMAGE, TESTSSL_IMAGE)) as stack:
        https_port = free_port()
        stack.env |= {
            "TLS": "acme",
            "SERVER_NAMES": DOMAIN,
            "HTTPS_PORT": str(https_port),
            "ACME_CHECK_INTERVAL": str(ACME_CHECK_INTERVAL_S),
            "ACME_PROFILE": "classic",
        }
        # `up --wait` returns once the acme service is healthy: its first certificate is in place.
        try:
            stack.up(services=("app", "nginx", "acme"))  # and pebble, which acme depends on
        except Exception as failed:  # the stack did not come up: say what its services logged
            logs = "\n".join(f"--- {name}:\n{stack.logs(name)[-4000:]}" for name in ("nginx", "acme", "pebble"))
            raise AssertionError(f"{failed}\n{logs}") from failed
        yield Edge(stack, https_port, pebble_root(management_port, directory))


def test_the_certificate_is_issued_by_the_ca_after_a_real_http_01_validation(edge: Edge) -> None:
    with edge.connect() as tls:
        certificate = tls.getpeercert()
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    assert ("DNS", DOMAIN) in certificate["subjectAltName"]
    lifetime = ssl.cert_time_to_seconds(certificate["notAfter"]) - ssl.cert_time_to_seconds(certificate["notBefore"])
    assert lifetime > 80 * 24 * 3600, "the classic profile's 90 days"
    # Pebble fetched the token lego wrote, from nginx on port 80, over plain HTTP and not redirected.
    lines = access_lines(edge.stack.logs("nginx"))
    challenges = [line for line in lines if line["path"].startswith("/.well-known/acme-challenge/")]
    assert challenges and all(line["status"] == 200 for line in challenges), challenges


def test_port_80_redirects_everything_but_the_challenge_to_https(edge: Edge) -> None:
    for method in ("GET", "POST"):
        connection = http.client.HTTPConnection("127.0.0.1", edge.stack.http_port, timeout=10)
        connection.request(method, "/api/request?from=http", headers={"Host": DOMAIN})
        response = connection.getresponse()
        assert response.status == 308, method  # the method and body are kept
        assert response.getheader("Location") == edge.url("/api/request?from=http")
        connection.close()
    missing = edge.stack.get("/.well-known/acme-challenge/no-such-token", {"Host": DOMAIN})
    assert missing.status == 404


def test_a_name_the_site_does_not_serve_gets_no_certificate(edge: Edge) -> None:
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
        edge.connect("other.test").close()


def test_the_app_is_told_https_and_the_client_gets_hsts(edge: Edge) -> None:
    response, body, _ = edge.get("/api/request")
    told = json.loads(body)
    assert response.status == 200
    assert told["scheme"] == "https" and told["url"].startswith(f"https://{DOMAIN}"), told
    assert response.getheader("Strict-Transport-Security") == "max-age=63072000"


def test_an_http2_client_gets_http2(edge: Edge) -> None:
    requests = 50
    result = subprocess.run(
        ["h2load", "-n", str(requests), "-c", "2", f"--connect-to=127.0.0.1:{edge.https_port}", edge.url("/healthz")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Application protocol: h2" in result.stdout, result.stdout
    assert f"{requests} succeeded, 0 failed, 0 errored" in result.stdout, result.stdout
    assert f"status codes: {requests} 2xx" in result.stdout, result.stdout


def test_a_websocket_and_an_event_stream_pass_through_the_edge(edge: Edge) -> None:
    raw = socket.create_connection(("127.0.0.1", edge.https_port), timeout=10)
    uri = f"wss://{DOMAIN}:{edge.https_port}/ws/echo"
    try:
        websocket = websocket_connect(uri, sock=raw, ssl=edge.context, server_hostname=DOMAIN, open_timeout=10)
    except TimeoutError as unanswered:  # say what nginx and the app made of it
        logs = "\n".join(f"--- {name}:\n{edge.stack.logs(name)[-3000:]}" for name in ("nginx", "app"))
        raise AssertionError(f"{unanswered}\n{logs}") from unanswered
    with websocket:
        for message in ("one", "two"):
            websocket.send(message)
            assert websocket.recv(timeout=10) == message
    response, body, _ = edge.get("/api/events?n=3")
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
    assert body.decode().count("data:") == 3, body


def test_chromium_loads_the_sample_page_over_https_with_its_assets_and_no_error(edge: Edge, tmp_path: Path) -> None:
    resolve = {DOMAIN: "127.0.0.1"}
    loaded = page_load(edge.url("/"), resolve, edge.pebble_root, tmp_path, "health", "Checking /healthz...")
    assert loaded.errors == [], loaded.errors
    assert loaded.text == "/healthz says: ok", "the page's script fetched /healthz over HTTPS"
    by_path = {url.removeprefix(edge.url("")).split("?")[0]: response for url, response in loaded.responses.items()}
    assert {"/", "/healthz"} <= set(by_path), by_path
    assert any(path.startswith("/static/") and path.endswith(".css") for path in by_path), by_path
    assert all(response["status"] == 200 for response in by_path.values()), by_path
    assert {response["protocol"] for response in by_path.values()} == {"h2"}, by_path


def test_testssl_finds_nothing_high_or_critical_and_only_tls_1_2_and_1_3(edge: Edge, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # testssl's user in its container writes the report here
    name = f"{edge.stack.name}-testssl"
    command = [
        "run", "--rm", "--name", name, "--network", f"{edge.stack.name}_default",
        "--volume", f"{tmp_path}:/report", "--volume", f"{edge.pebble_root}:/pebble-root.pem:ro",
        TESTSSL_IMAGE, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "min",
        "--add-ca", "/pebble-root.pem", "--jsonfile", "/report/testssl.json", f"{DOMAIN}:8443",
    ]  # fmt: skip
    try:
        result = edge.stack.docker_run(*command, timeout=600)
    finally:
        edge.stack.docker_run("rm", "--force", name)
    report = tmp_path / "testssl.json"
    assert report.exists(), result.stdout + result.stderr
    findings = json.loads(report.read_text())
    # Pebble's certificates name no CRL and no OCSP responder (Let's Encrypt's name a CRL): a finding
    # about the test CA, not this edge; its text is held exactly, so it can hide nothing else.
    revocation = {"id": "cert_revocation", "severity": "HIGH", "finding": "Neither CRL nor OCSP URI provided"}
    severe = [
        finding
        for finding in findings
        if finding["severity"] in {"HIGH", "CRITICAL"} and {key: finding[key] for key in revocation} != revocation
    ]
    assert severe == [], severe
    offered = {finding["id"]: finding["finding"] for finding in findings if finding["id"].startswith(("SSL", "TLS1"))}
    assert {name for name, said in offered.items() if said.startswith("offered")} == {"TLS1_2", "TLS1_3"}, offered


def test_a_renewal_under_load_fails_no_request(edge: Edge) -> None:
    """The profile changes to one so short-lived that the loop renews it twice while clients keep
    asking, each on a new connection: first at once (another profile than the one kept), then when due."""
    stopping = threading.Event()
    outcomes: Counter[str] = Counter()
    serials: list[str] = []

    def client() -> None:
        while not stopping.is_set():
            try:
                response, _, certificate = edge.get("/healthz")
                outcomes[str(response.status)] += 1
                if not serials or serials[-1] != certificate["serialNumber"]:
                    serials.append(certificate["serialNumber"])
            except OSError as error:
                outcomes[type(error).__name__] += 1
            time.sleep(0.05)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(LOAD_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        edge.stack.env["ACME_PROFILE"] = "shortlived"
        edge.stack.up("--no-deps", services=("acme",))
        deadline = time.monotonic() + RENEWAL_TIMEOUT_S
        while len(set(serials)) < 3 and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
    print(f"renewal under load: {dict(outcomes)} in {time.monotonic() - started:.0f} s, certificates {serials}")
    assert len(set(serials)) >= 3, f"certificates served: {serials}\n{edge.stack.logs('acme')[-3000:]}"
    assert set(outcomes) == {"200"} and outcomes["200"] > 100, outcomes


def install(certificate: Path, key: Path, into: Path) -> None:
    """As the README says: tls.crt and tls.key, the key readable by nginx's group (101) only, each
    written beside its place and renamed into it."""
    for source, name, mode in ((key, "tls.key", 0o640), (certificate, "tls.crt", 0o644)):
        written = into / f".{name}.new"
        shutil.copyfile(source, written)
        os.chown(written, 0, 101)
        written.chmod(mode)
        written.rename(into / name)


def test_tls_files_are_served_and_a_replaced_pair_without_a_restart(cookies_session, docker, tmp_path: Path) -> None:
    """tls=files: the team's certificate and key, mounted from TLS_FILES; replaced, the new pair is
    served within nginx's 30 s check, by the same nginx container, never restarted."""
    project = bake_with(cookies_session, {"tls": "files"})
    ca = certificate_authority(tmp_path, "team-ca")
    files = tmp_path / "tls"
    files.mkdir(mode=0o755)
    install(*issue(tmp_path, "team-ca", "first", DOMAIN), files)
    with compose_stack(project, docker, "tls-files") as stack:
        https_port = free_port()
        stack.env |= {"TLS": "files", "SERVER_NAMES": DOMAIN, "HTTPS_PORT": str(https_port), "TLS_FILES": str(files)}
        stack.up()
        edge = Edge(stack, https_port, ca)
        nginx = stack.container("nginx")
        started_at = stack.inspect(nginx)["State"]["StartedAt"]
        response, _, first = edge.get("/healthz")
        assert response.status == 200 and first["issuer"] == ((("commonName", "team-ca test CA"),),)
        install(*issue(tmp_path, "team-ca", "second", DOMAIN), files)
        deadline = time.monotonic() + 45
        while edge.get("/healthz")[2]["serialNumber"] == first["serialNumber"]:
            assert time.monotonic() < deadline, "the replaced pair was not served within 45 s"
            time.sleep(1)
        assert stack.container("nginx") == nginx and stack.inspect(nginx)["State"]["StartedAt"] == started_at
