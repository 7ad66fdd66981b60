"""`make deploy`: a new version of the compose stack on this host, with no request dropped.

`docker compose up --build` stops the old app container and then starts the new one: until the
new one is healthy, nginx has no app to send requests to. Here, with compose's own commands:

  1. the images are built;
  2. the new nginx image checks its config (`nginx -t`): one it refuses never goes live;
  3. the release step (the migrate service) runs alone: one that fails stops the deploy here;
  4. one new app replica (DEPLOY_SURGE) starts beside the old ones (`up --scale --no-recreate
     --wait`), and nginx, which looks the app up by DNS, sends requests to it within its DNS
     answer's life (NGINX_DNS_VALID_S);
  5. then an old replica stops as the engine stops any container (SIGTERM: it finishes the requests
     it holds, and closes each WebSocket with 1001) and is removed; 4 and 5 again until no old one
     is left, so that memory and the database budget need room for one replica more, no more;
  6. nginx (and the ACME client) are replaced only if what they serve or their compose config
     changed: one container at a time can hold the host's port, so connections are refused from
     the old one's stop until the new one listens (NGINX_REPLACE_DRAIN_S, and its start).

With IMAGE_TAG (`make deploy IMAGE_TAG=v1.4.0`), step 1 pulls that published version
(compose.release.yaml names IMAGE_REPOSITORY's images) instead of building the checkout. Each
deploy that goes live is a line in DEPLOY_HISTORY; `make rollback` deploys the tag that ran before
the current one, the same way.

With nothing running yet it is `up --wait`. A new version whose replicas fail their health check
never replaces the old ones: they are removed, and the command exits 1 saying why in one line
(a replica that fails after others took over leaves those: the message says how many).
Stdlib only, like compose_stack.py, whose ComposeStack it drives.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

from . import deploy_history
from .compose_stack import RELEASE_STEP, UP_TIMEOUT, CheckFailed, ComposeStack
from .reasons import last_line
from .settings import (
    DEFAULT_COMPOSE,
    DEFAULT_DOCKER,
    DEPLOY_HISTORY,
    DEPLOY_SURGE,
    NGINX_DNS_VALID_S,
    NGINX_REPLACE_DRAIN_S,
    PUBLISHED_IMAGES,
    RELEASE_COMPOSE_FILE,
    STOP_GRACE_PERIOD_S,
    SettingError,
    compose_project_name,
    release_settings,
)

APP = "app"
# Started with the app's replicas, and replaced only when their image changed.
EDGE_SERVICES = ("nginx", "acme")


class DeployFailed(Exception):
    """Why the new version did not go live; the running one was left serving."""


def say(message: str) -> None:
    print(f"deploy: {message}", flush=True)


def running(stack: ComposeStack, service: str) -> list[str]:
    return stack.run("ps", "--quiet", service).stdout.split()


def exit_code_of_run(stack: ComposeStack, service: str, *command: str) -> tuple[int, str]:
    """`compose run` of a one-off container of `service`, without its dependencies; its exit code
    as the engine recorded it (some Compose versions exit 0 whatever it returned) and its last line."""
    name = f"{stack.name}-{service}-deploy-{os.getpid()}"
    one_off = ("run", "--no-deps", "--no-TTY", "--name", name, service, *command)
    result = stack.run(*one_off, check=False, timeout=UP_TIMEOUT)
    try:
        state = stack.inspect(name)["State"]
    except CheckFailed:
        return result.returncode or 1, last_line(result.stdout + result.stderr)
    log = stack.docker_run("logs", name)
    stack.docker_run("rm", "--force", name)
    return int(state["ExitCode"]), last_line(log.stdout + log.stderr)


def why_unhealthy(stack: ComposeStack, container: str) -> str:
    """A failed replica's state in one line: its health check's last answer, or how it exited."""
    state = stack.inspect(container)["State"]
    name = stack.inspect(container)["Name"].lstrip("/")
    if state["Status"] != "running":
        log = stack.docker_run("logs", container)
        return f"{name} {state['Status']} (exit {state['ExitCode']}): {last_line(log.stdout + log.stderr)}"
    health = state.get("Health") or {}
    probes = health.get("Log") or []
    answer = last_line(probes[-1]["Output"]) if probes else "no check has finished"
    return f"{name} is {health.get('Status', 'without a health check')}: {answer}"


def stop_and_remove(stack: ComposeStack, containers: list[str]) -> None:
    """As the engine stops a container (SIGTERM, then SIGKILL after compose's stop_grace_period)."""
    if containers:
        stack.docker_run("stop", "--time", str(STOP_GRACE_PERIOD_S), *containers, timeout=STOP_GRACE_PERIOD_S + 60)
        stack.docker_run("rm", *containers)


def image_of(stack: ComposeStack, container: str) -> str:
    return str(stack.inspect(container)["Image"])


def roll_app(stack: ComposeStack, old: list[str], timeout: int) -> list[str]:
    """The `old` app replicas replaced, DEPLOY_SURGE at a time: new ones started beside them, and once
    healthy and in nginx's DNS answer, as many old ones stopped and removed. Returns the new ones."""
    # A replica that exited earlier would count towards the scale and be started again, old as it is.
    stack.run("rm", "--force", APP)
    left, new = list(old), list[str]()
    while left:
        try:
            started = start_replicas(stack, len(old) + DEPLOY_SURGE, [*left, *new], timeout)
        except DeployFailed as failure:
            if new:
                raise DeployFailed(f"{failure}; {len(new)} of {len(old)} replicas run the new version") from None
            raise
        new += started
        say(f"{len(new)} of {len(old)} new replica(s) healthy; nginx finds them within {NGINX_DNS_VALID_S} s")
        time.sleep(NGINX_DNS_VALID_S + 1)
        stopping, left = left[: len(started)], left[len(started) :]
        stop_and_remove(stack, stopping)
    return new


def start_replicas(stack: ComposeStack, scale: int, running_now: list[str], timeout: int) -> list[str]:
    """Scale the app to `scale` without touching the `running_now` replicas; the new ones once
    healthy, or DeployFailed (and they removed) if any is not."""
    wait = ("--wait", "--wait-timeout", str(timeout))
    options = ("--detach", "--no-deps", "--no-recreate", "--no-build", "--scale", f"{APP}={scale}", *wait)
    up = stack.run("up", *options, APP, check=False, timeout=timeout + 60)
    listed = stack.run("ps", "--all", "--quiet", APP).stdout.split()
    started = [container for container in listed if container not in running_now]
    # `up --wait` may say "is unhealthy" and still exit 0: ask the engine about each new replica.
    failed = [container for container in started if not healthy(stack, container)]
    if failed or len(started) < scale - len(running_now):
        reason = why_unhealthy(stack, failed[0]) if failed else last_line(up.stdout + up.stderr)
        stop_and_remove(stack, started)
        raise DeployFailed(f"the new version failed its health check ({reason})")
    return started


def healthy(stack: ComposeStack, container: str) -> bool:
    state = stack.inspect(container)["State"]
    return bool(state["Running"]) and (state.get("Health") or {}).get("Status") == "healthy"


def replace_if_changed(stack: ComposeStack, service: str, plain: ComposeStack, repository: str | None) -> None:
    """An edge service's container replaced if what it serves or its compose config changed, the old
    one given NGINX_REPLACE_DRAIN_S to finish what it holds: its host port refuses connections meanwhile.
    `plain` is the stack of compose.yaml alone, as a deploy that built the checkout ran it;
    `repository`, IMAGE_REPOSITORY, where published images run."""
    current = running(stack, service)
    if current and not changed(stack, service, current[0], plain, repository):
        return
    started = time.monotonic()
    stack.up(
        "--no-deps", "--no-build", "--force-recreate", "--timeout", str(NGINX_REPLACE_DRAIN_S), services=(service,)
    )
    say(f"{service} replaced in {time.monotonic() - started:.1f} s: what it serves changed")


def config_hash(stack: ComposeStack, service: str) -> str:
    hashed = [line.split()[-1] for line in stack.run("config", "--hash", service).stdout.splitlines() if line.strip()]
    if len(hashed) != 1:
        raise DeployFailed(f"compose gave no config hash for {service}")
    return hashed[0]


def changed(stack: ComposeStack, service: str, container: str, plain: ComposeStack, repository: str | None) -> bool:
    """Whether the new build serves other files than `container` (nginx: `start.sh digest` in both),
    or compose's config of the service changed (its environment, ports, volumes). Another image
    alone (another tag, or a tag after a build here) is not a change of config: compose's hash of
    the service as the container was made is compared with the new config's as it stands and with
    the image the container runs."""
    inspected = stack.inspect(container)["Config"]
    image = str(inspected["Image"])
    hashes = {config_hash(stack, service), config_hash(plain, service)}
    if repository and service in PUBLISHED_IMAGES and image.startswith(f"{repository}{PUBLISHED_IMAGES[service]}:"):
        hashes.add(config_hash(running_published(plain, image.rpartition(":")[2]), service))
    if (inspected["Labels"] or {}).get("com.docker.compose.config-hash") not in hashes:
        return True
    if service != "nginx":
        return image_of(stack, container) != str(stack.inspect(built_image(stack, service))["Id"])
    status, new = exit_code_of_run(stack, service, "digest")
    old = stack.docker_run("exec", container, "sh", "/etc/nginx/start.sh", "digest")
    return status != 0 or old.returncode != 0 or last_line(old.stdout) != new


def built_image(stack: ComposeStack, service: str) -> str:
    """The image compose builds for `service`: its `image:`, else compose's own name for it."""
    return str(stack.config()["services"][service].get("image") or f"{stack.name}-{service}")


def running_published(stack: ComposeStack, tag: str) -> ComposeStack:
    """The stack with compose.release.yaml over compose.yaml: IMAGE_REPOSITORY's images at `tag`."""
    files = ["--file", "compose.yaml", "--file", RELEASE_COMPOSE_FILE]
    return ComposeStack([*stack.compose, *files], stack.docker, stack.name, None, {**stack.env, "IMAGE_TAG": tag}, {})


def pull(stack: ComposeStack, tag: str) -> None:
    """The published images at `tag`; a copy this engine already holds serves when the registry cannot."""
    result = stack.run("pull", "--quiet", "--ignore-buildable", check=False, timeout=1800)
    if result.returncode == 0:
        return
    images = {service["image"] for service in stack.config()["services"].values() if "build" not in service}
    missing = [image for image in sorted(images) if stack.docker_run("image", "inspect", image).returncode != 0]
    if missing:
        raise DeployFailed(f"{missing[0]} could not be pulled ({last_line(result.stdout + result.stderr)})")
    say(f"the registry did not answer; {tag}'s images are on this host already")


def deploy(stack: ComposeStack, timeout: int, tag: str | None = None, repository: str | None = None) -> None:
    started = time.monotonic()
    plain = stack
    if tag is None:
        stack.run("build", timeout=1800)
        say(f"images built in {time.monotonic() - started:.0f} s")
    else:
        stack = running_published(stack, tag)
        pull(stack, tag)
        stack.run("build", timeout=1800)  # what is not published (the ACME client) is built here
        say(f"{tag}'s images pulled in {time.monotonic() - started:.0f} s")
    old = running(stack, APP)
    if not old:
        stack.up("--no-build", services=())  # every service, as `docker compose up` starts them
        replicas = running(stack, APP)
        unhealthy = [why_unhealthy(stack, container) for container in replicas if not healthy(stack, container)]
        if unhealthy:
            raise DeployFailed(f"the first start is not healthy ({unhealthy[0]})")
        say(f"nothing was running: started and healthy in {time.monotonic() - started:.0f} s")
        deploy_history.record(DEPLOY_HISTORY, tag)
        return
    services = stack.config()["services"]
    edge = [service for service in EDGE_SERVICES if service in services]
    if "nginx" in edge:
        status, line = exit_code_of_run(stack, "nginx", "check")
        if status:
            raise DeployFailed(f"the new nginx config is refused ({line}); nothing was changed")
    for step in RELEASE_STEP:
        status, line = exit_code_of_run(stack, step)
        if status:
            raise DeployFailed(f"the release step failed ({line}); the running version keeps serving")
        say(f"release step: {line}")
    roll_app(stack, old, timeout)
    for service in edge:
        replace_if_changed(stack, service, plain, repository)
    deploy_history.record(DEPLOY_HISTORY, tag)
    say(f"{tag or 'the new version'} serves; deployed in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A new version of the compose stack without a dropped request.")
    parser.add_argument("--compose", default=DEFAULT_COMPOSE, help=f"the compose command (default: {DEFAULT_COMPOSE})")
    parser.add_argument("--docker", default=DEFAULT_DOCKER, help=f"the engine's command (default: {DEFAULT_DOCKER})")
    parser.add_argument(
        "--project-name", default=compose_project_name(os.environ), help="the compose project (default: compose's own)"
    )
    parser.add_argument(
        "--timeout", type=int, default=UP_TIMEOUT, help=f"seconds new replicas may take to be healthy ({UP_TIMEOUT})"
    )
    parser.add_argument(
        "--rollback",
        action="store_true",
        help=f"deploy the tag that ran before this one ({DEPLOY_HISTORY.name})",
    )
    args = parser.parse_args(argv)
    stack = ComposeStack(shlex.split(args.compose), shlex.split(args.docker), args.project_name, None, defaults={})
    try:
        release = release_settings(os.environ)
        tag = deploy_history.previous_tag(DEPLOY_HISTORY) if args.rollback else release.image_tag
        if args.rollback:
            say(f"rolling back to {tag}")
        deploy(stack, args.timeout, tag, release.image_repository)
    except (DeployFailed, SettingError, deploy_history.NothingToGoBackTo) as failure:
        print(f"deploy: FAILED: {failure}", file=sys.stderr)
        return 1
    except (CheckFailed, subprocess.TimeoutExpired) as failure:
        print(f"deploy: FAILED: {str(failure).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
