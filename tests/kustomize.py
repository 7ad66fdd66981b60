"""A kustomize Component's RFC 6902 patches applied to a manifest, as kustomize applies them (with
jsonpatch: no kustomize binary comes from the registries the suite installs from)."""

from __future__ import annotations

from pathlib import Path

import jsonpatch
import yaml


def with_component(k8s: Path, component: str, manifest: str) -> dict:
    """deploy/k8s/`manifest` with each patch of deploy/k8s/`component`/kustomization.yaml applied."""
    resource = yaml.safe_load((k8s / manifest).read_text())
    for patch in yaml.safe_load((k8s / component / "kustomization.yaml").read_text())["patches"]:
        resource = jsonpatch.apply_patch(resource, yaml.safe_load(patch["patch"]))
    return resource
