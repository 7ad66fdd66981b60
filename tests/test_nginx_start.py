"""The nginx image's entrypoint, pyserve_runtime/nginx_start.sh, with nothing on PATH but busybox's applets,
envsubst and nginx: what the official Alpine image offers it (the container tests run it on a
Debian-based stand-in). It must render what `make local` renders, find the DNS server and the CPU
count, check the config and leave nginx serving, stopped gracefully by SIGQUIT."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets.sync.client
import websockets.sync.server

from pyserve_template import settings
from pyserve_template.baking import free_port

from .stack import is_listening, started, wait_for
from .test_validators import local_script, project_runtime

BUSYBOX_APPLETS = ("sh", "awk", "nproc", "find", "cp", "mkdir", "dirname", "rm", "cat", "md5sum", "sort")
NGINX = shutil.which("nginx", path=os.environ["PATH"] + ":/usr/sbin")


def first_nameserver() -> str:
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        if line.split()[:1] == ["nameserver"]:
            return line.split()[1]
    return "127.0.0.11"


@pytest.fixture
def busybox_path(tmp_path: Path) -> Path:
    busybox = shutil.which("busybox")
    if not (busybox and NGINX and shutil.which("envsubst")):
        pytest.skip("needs busybox, envsubst and nginx (./run-tests installs them)")
    tools = tmp_path / "bin"
    tools.mkdir()
    for applet in BUSYBOX_APPLETS:
        (tools / applet).symlink_to(busybox)
    (tools / "envsubst").symlink_to(shutil.which("envsubst"))
    (tools / "nginx").symlink_to(NGINX)
    return tools


def image_layout(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """As the nginx image lays it out: nginx.conf, templates/ and the entrypoint, written by the
    project's `pyserve nginx-entrypoint`, in the config directory; and a writable prefix."""
    conf_dir, prefix = tmp_path / "etc-nginx", tmp_path / "prefix"
    shutil.copytree(project / "deploy" / "nginx", conf_dir)
    project_runtime(project, "entrypoints").main(["nginx", str(conf_dir / "start.sh")])
    prefix.mkdir()
    return conf_dir, prefix


def worker_count(master: int) -> int:
    return int(subprocess.run(["pgrep", "-c", "-P", str(master)], capture_output=True, text=True).stdout)


@pytest.mark.parametrize(
    ("changes", "asked"),
    [
        ({}, {}),
        ({}, {"WS_CONNECTIONS": "2500"}),
        ({"static_strategy": "none", "framework": "flask"}, {}),
        ({}, {"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.4.7 fd00::/8"}),
    ],
    ids=["nginx", "nginx-2500-websockets", "none-wsgi", "trusted-proxies"],
)
def test_start_script_under_busybox_renders_what_make_local_renders(
    bake,
    busybox_path: Path,
    tmp_path: Path,
    changes: dict[str, str],
    asked: dict[str, str],
) -> None:
    """Among what both render: nginx's connections, from WS_CONNECTIONS or else the project's own
    expectation, which compose and the Deployment pass to nginx's container as they do to the app's,
    and the proxies whose X-Forwarded-* nginx believes."""
    project = bake(**changes)
    local = local_script(project)
    http_port = free_port()
    expected_websockets = local.inputs.long_lived_from_environment(asked, local.machine.load_stack())
    values = {**local.nginx_values({"HTTP_PORT": str(http_port), **asked}), "RESOLVER": first_nameserver()}
    expected = local.write_nginx_config(tmp_path / "expected", values).parent / "conf.d"

    conf_dir, prefix = image_layout(project, tmp_path)
    # It finds the resolver and sizes the connections itself.
    env = {name: value for name, value in values.items() if name != "RESOLVER" and not name.startswith("NGINX_")}
    env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
    if expected_websockets:
        env["WS_CONNECTIONS"] = str(expected_websockets)
    env.update({name: value for name, value in asked.items() if name == "TRUSTED_PROXIES"})
    log = tmp_path / "nginx.log"
    with started(["sh", str(conf_dir / "start.sh")], log, env=env) as nginx:
        wait_for(lambda: is_listening(http_port) or nginx.poll() is not None, 15, "nginx listening")
        assert nginx.poll() is None, log.read_text()
        rendered = sorted(path.relative_to(prefix / "conf.d") for path in (prefix / "conf.d").rglob("*.conf"))
        assert rendered == sorted(path.relative_to(expected) for path in expected.rglob("*.conf"))
        for name in rendered:
            assert (prefix / "conf.d" / name).read_text() == (expected / name).read_text(), name
        cpus = len(os.sched_getaffinity(0))  # no CPU quota on this test's own cgroup
        connections = int(values["NGINX_WORKER_CONNECTIONS"])
        assert connections >= 2 * expected_websockets, "a worker holds both ends of every WebSocket"
        started_line = f"worker_processes {cpus}, worker_connections {connections}, resolver {values['RESOLVER']},"
        assert f"nginx-start: {started_line}" in log.read_text()
        # The master listens before it forks its workers: count them once they have had the time to start.
        wait_for(lambda: worker_count(nginx.pid) == cpus, 5, f"{cpus} nginx workers")
        nginx.send_signal(signal.SIGQUIT)  # the image's STOPSIGNAL: a graceful stop
        assert nginx.wait(timeout=10) == 0


def test_the_digest_changes_with_what_nginx_serves_and_only_then(bake, busybox_path: Path, tmp_path: Path) -> None:
    """`start.sh digest`, which `pyserve deploy` compares between the running nginx and a new build."""
    conf_dir, _ = image_layout(bake(), tmp_path)
    static = tmp_path / "srv" / "static"
    static.mkdir(parents=True)
    (static / "site.css").write_text("body { color: black }\n")
    env = {"PATH": str(busybox_path), "NGINX_CONF_DIR": str(conf_dir), "STATIC_PARENT": str(static.parent)}

    def digest() -> str:
        result = subprocess.run(["sh", str(conf_dir / "start.sh"), "digest"], env=env, capture_output=True, text=True)
        assert result.returncode == 0 and len(result.stdout.splitlines()) == 1, result
        return result.stdout

    first = digest()
    os.utime(static / "site.css", (0, 0))  # a rebuild's new timestamps: the same files
    (conf_dir / "tls").mkdir(exist_ok=True)
    (conf_dir / "tls" / "tls.crt").write_text("a certificate, from a volume")
    assert digest() == first
    (static / "site.css").write_text("body { color: navy }\n")
    assert digest() != first
    (static / "site.css").write_text("body { color: black }\n")
    (conf_dir / "templates" / "limits.conf.template").write_text("# changed\n")
    assert digest() != first


def test_start_script_refuses_a_config_nginx_rejects(bake, busybox_path: Path, tmp_path: Path) -> None:
    """`nginx -t` runs before nginx starts: a bad value stops the container with nginx's own reason."""
    project = bake()
    conf_dir, prefix = image_layout(project, tmp_path)
    local = local_script(project)
    env = {**local.nginx_values({"HTTP_PORT": str(free_port())}), "REQUEST_TIMEOUT": "soon"}
    env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
    result = subprocess.run(["sh", str(conf_dir / "start.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "proxy_read_timeout" in result.stderr, result.stderr


def test_start_script_refuses_websockets_that_are_not_a_number(bake, busybox_path: Path, tmp_path: Path) -> None:
    project = bake()
    conf_dir, prefix = image_layout(project, tmp_path)
    env = {**local_script(project).nginx_values({"HTTP_PORT": str(free_port())}), "WS_CONNECTIONS": "many"}
    env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
    result = subprocess.run(["sh", str(conf_dir / "start.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    refusal = "nginx-start: WS_CONNECTIONS: 'many' is not a whole number; unset it or give e.g. 1000"
    assert result.stderr.strip() == refusal


@pytest.mark.parametrize("proxies", ["10.0.0.0/8 *", "10.0.0.0/8,lb.example", "/8", "10.0.0.0/8/8"])
def test_start_script_refuses_trusted_proxies_that_are_not_addresses(
    bake, busybox_path: Path, tmp_path: Path, proxies: str
) -> None:
    """start.sh and `make local` refuse the same entry, in the same words."""
    project = bake()
    conf_dir, prefix = image_layout(project, tmp_path)
    local = local_script(project)
    env = {**local.nginx_values({"HTTP_PORT": str(free_port())}), "TRUSTED_PROXIES": proxies}
    env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
    result = subprocess.run(["sh", str(conf_dir / "start.sh")], env=env, capture_output=True, text=True, timeout=30)
    with pytest.raises(SystemExit) as refused:
        local.nginx_values({"TRUSTED_PROXIES": proxies})
    assert result.returncode != 0
    assert result.stderr.strip() == f"nginx-start: {str(refused.value).removeprefix('local: ')}"
    assert "is not an IP address or CIDR range; give e.g. 10.0.0.0/8, or leave it unset" in result.stderr


@pytest.mark.parametrize(
    ("asked", "refusal"),
    [
        ({"TLS": "letsencrypt"}, "TLS: 'letsencrypt' is not one of none, acme, files"),
        (
            {"TLS": "acme", "HTTPS_PORT": "https"},
            "HTTPS_PORT: 'https' is not a port number; give the port clients reach HTTPS on, e.g. 443",
        ),
    ],
    ids=["tls", "https-port"],
)
def test_start_script_refuses_a_tls_setting_it_cannot_serve(
    bake, busybox_path: Path, tmp_path: Path, asked: dict[str, str], refusal: str
) -> None:
    project = bake(tls="acme")
    conf_dir, prefix = image_layout(project, tmp_path)
    env = {**local_script(project).nginx_values({"HTTP_PORT": str(free_port())}), **asked}
    env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
    result = subprocess.run(["sh", str(conf_dir / "start.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.strip() == f"nginx-start: {refusal}"


def test_a_stopping_nginx_holds_a_websocket_only_until_its_shutdown_timeout(
    bake, busybox_path: Path, tmp_path: Path
) -> None:
    """On SIGQUIT nginx stops listening at once and keeps relaying what it holds; a WebSocket never
    ends by itself, and nginx cannot close it cleanly (it relays frames, it sends none): it cuts it
    at worker_shutdown_timeout (NGINX_SHUTDOWN_S), not at the engine's SIGKILL."""
    project = bake()
    local = local_script(project)
    http_port = free_port()
    with echo_server() as app_port:
        values = local.nginx_values({"HTTP_PORT": str(http_port), "APP_PORT": str(app_port)})
        conf_dir, prefix = image_layout(project, tmp_path)
        env = {name: value for name, value in values.items() if not name.startswith("NGINX_")}
        env.update(PATH=str(busybox_path), NGINX_CONF_DIR=str(conf_dir), NGINX_PREFIX=str(prefix))
        with started(["sh", str(conf_dir / "start.sh")], tmp_path / "nginx.log", env=env) as nginx:
            wait_for(lambda: is_listening(http_port) or nginx.poll() is not None, 15, "nginx listening")
            through_nginx = socket.create_connection(("127.0.0.1", http_port))
            with websockets.sync.client.connect(f"ws://localhost:{http_port}/ws/echo", sock=through_nginx) as client:
                client.send("before")
                assert client.recv(timeout=5) == "before"
                nginx.send_signal(signal.SIGQUIT)
                quit_at = time.monotonic()
                wait_for(lambda: not is_listening(http_port), 2, "nginx no longer listening")
                client.send("while stopping")
                assert client.recv(timeout=5) == "while stopping"
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    client.recv(timeout=settings.NGINX_SHUTDOWN_S + 10)
                held_s = time.monotonic() - quit_at
            assert nginx.wait(timeout=10) == 0
    assert closed.value.rcvd is None, "nginx sent a close frame of its own"
    assert settings.NGINX_SHUTDOWN_S - 1 <= held_s <= settings.NGINX_SHUTDOWN_S + 3, held_s


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """A WebSocket echo on 127.0.0.1, standing in for the app behind nginx; yields its port."""

    def echo(connection: websockets.sync.server.ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    with websockets.sync.server.serve(echo, "127.0.0.1", 0) as server:
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            serving.join(timeout=10)
