"""`make publish`: both images built from this commit and pushed to IMAGE_REPOSITORY.

compose builds them (the app and nginx services, under a project of their own, `<project>-publish`),
then the engine tags and pushes them.

Each image is tagged with the commit it was built from and, when the commit is a release tag
(`git tag v1.4.0`), with that tag too; the app's is IMAGE_REPOSITORY, nginx's IMAGE_REPOSITORY-nginx.
Both carry the standard OCI labels (version, revision, created, source: the Dockerfile's build
arguments), and the app reports the version and the commit in its answers. A checkout with
uncommitted changes is refused: an image tagged with a commit would not be that commit.

CI runs it on the default branch and on version tags (.github/workflows/ci.yml), after logging the
engine in to the registry. Stdlib only, like deploy.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys

from .checkout import git_answer
from .compose_stack import ComposeStack
from .reasons import last_line
from .settings import (
    DEFAULT_COMPOSE,
    DEFAULT_DOCKER,
    PUBLISHED_IMAGES,
    ReleaseSettings,
    SettingError,
    compose_project_name,
    release_settings,
)

BUILD_TIMEOUT_S = 1800
# compose.yaml refuses to be read without these (its `:?`); a build reads neither, and no image holds them.
BUILD_ONLY = {"DJANGO_SECRET_KEY": "unused-by-a-build", "POSTGRES_PASSWORD": "unused-by-a-build"}


class PublishFailed(Exception):
    """Why nothing more was pushed; the message names the step and the engine's or git's reason."""


def say(message: str) -> None:
    print(f"publish: {message}", flush=True)


def image_tags(release: ReleaseSettings, revision: str) -> list[str]:
    """The commit (or IMAGE_TAG), then the release tag the commit carries, if any."""
    first = release.image_tag or revision
    exact = git_answer("describe", "--tags", "--exact-match")
    return [first] + ([exact] if exact and exact != first else [])


def build_arguments(release: ReleaseSettings, revision: str) -> list[str]:
    version = release.version or git_answer("describe", "--tags", "--always") or revision
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    labels = {"VERSION": version, "REVISION": revision, "CREATED": created, "SOURCE": release.source or ""}
    return [argument for name, value in labels.items() for argument in ("--build-arg", f"{name}={value}")]


def publish(release: ReleaseSettings, stack: ComposeStack) -> list[str]:
    """Build both images with compose (its BuildKit runs the Dockerfile's cache mounts on either
    engine), tag them and push them; the references pushed."""
    if release.image_repository is None:
        raise PublishFailed("IMAGE_REPOSITORY is unset; give the app image's repository, e.g. ghcr.io/org/my-service")
    revision = git_answer("rev-parse", "HEAD")
    if revision is None:
        raise PublishFailed("this is not a git checkout with a commit: the images are tagged with the commit")
    if git_answer("status", "--porcelain", "--untracked-files=no"):
        raise PublishFailed(f"the checkout has uncommitted changes: images tagged {revision[:12]} would not be it")
    tags = image_tags(release, revision)
    arguments = build_arguments(release, revision)
    built = stack.run("build", *arguments, *PUBLISHED_IMAGES, check=False, timeout=BUILD_TIMEOUT_S)
    if built.returncode != 0:
        raise PublishFailed(f"the images did not build ({last_line(built.stdout + built.stderr)})")
    pushed = []
    for service, suffix in PUBLISHED_IMAGES.items():
        for tag in tags:
            reference = f"{release.image_repository}{suffix}:{tag}"
            for step in (("tag", f"{stack.name}-{service}", reference), ("push", reference)):
                result = stack.docker_run(*step, timeout=BUILD_TIMEOUT_S)
                if result.returncode != 0:
                    raise PublishFailed(
                        f"{reference}: docker {step[0]} failed ({last_line(result.stdout + result.stderr)})"
                    )
            say(f"pushed {reference}")
            pushed.append(reference)
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build both images from this commit and push them.")
    parser.add_argument("--compose", default=DEFAULT_COMPOSE, help=f"the compose command (default: {DEFAULT_COMPOSE})")
    parser.add_argument("--docker", default=DEFAULT_DOCKER, help=f"the engine's command (default: {DEFAULT_DOCKER})")
    args = parser.parse_args(argv)
    name = f"{compose_project_name(os.environ)}-publish"
    stack = ComposeStack(shlex.split(args.compose), shlex.split(args.docker), name, None, BUILD_ONLY, defaults={})
    try:
        publish(release_settings(os.environ), stack)
    except (PublishFailed, SettingError) as failure:
        print(f"publish: FAILED: {failure}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as failure:
        print(
            f"publish: FAILED: {shlex.join(map(str, failure.cmd))} took over {failure.timeout:.0f} s", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
