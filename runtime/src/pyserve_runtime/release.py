"""`make release IMAGE_TAG=v1.4.0`: the Kubernetes manifests name that published version.

deploy/k8s/kustomization.yaml's `images:` is the one place the Deployment's images are named: each
entry's newTag becomes IMAGE_TAG and, with IMAGE_REPOSITORY, its newName that repository (nginx's
with `-nginx`, as `make publish` pushes it). The file is edited line by line, so its comments stay.
Commit it, then `kubectl apply -k deploy/k8s` rolls out exactly that build; going back is the same
with the previous tag (or `git revert` of the commit).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .settings import DEPLOY, PUBLISHED_IMAGES, SettingError, release_settings

KUSTOMIZATION = DEPLOY / "k8s" / "kustomization.yaml"
ENTRY = re.compile(r"^\s*- name: (?P<name>\S+)\s*$")
FIELD = re.compile(r"^(?P<indent>\s*)(?P<field>newName|newTag): \S+\s*$")


class ReleaseFailed(Exception):
    pass


def named(text: str, repository: str | None, tag: str) -> str:
    """`text` (a kustomization) with each image entry's newTag set to `tag`, and its newName to
    `repository` (with the entry's suffix: `-nginx` for nginx's image) where one is given."""
    suffixes = sorted(PUBLISHED_IMAGES.values(), key=len, reverse=True)
    lines, entry, changed = [], "", 0
    for line in text.splitlines(keepends=True):
        if found := ENTRY.match(line):
            entry = found["name"]
        elif (found := FIELD.match(line)) and entry:
            suffix = next(suffix for suffix in suffixes if entry.endswith(suffix))
            value = tag if found["field"] == "newTag" else (repository + suffix if repository else None)
            if value is not None:
                line = f"{found['indent']}{found['field']}: {value}\n"
                changed += 1
        lines.append(line)
    if not changed:
        raise ReleaseFailed("the kustomization has no images: entry with a newTag to set")
    return "".join(lines)


def release(kustomization: Path, repository: str | None, tag: str | None) -> str:
    if tag is None:
        raise ReleaseFailed("IMAGE_TAG is unset; give the published version to run, e.g. make release IMAGE_TAG=v1.4.0")
    kustomization.write_text(named(kustomization.read_text(), repository, tag))
    images = re.findall(r"newName: (\S+)\s+newTag: (\S+)", kustomization.read_text())
    return ", ".join(f"{name}:{image_tag}" for name, image_tag in images)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Name a published version in the Kubernetes manifests.").parse_args(argv)
    try:
        settings = release_settings(os.environ)
        images = release(KUSTOMIZATION, settings.image_repository, settings.image_tag)
    except (ReleaseFailed, SettingError) as failure:
        print(f"release: FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"release: {KUSTOMIZATION.relative_to(DEPLOY.parent)} names {images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
