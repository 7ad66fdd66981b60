"""`pyserve release`: the kustomization's images named by a published tag, its comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyserve_runtime import release

KUSTOMIZATION = """\
resources:
  - deployment.yaml
# The images the Deployment runs.
images:
  - name: my-service
    newName: my-service
    newTag: unreleased
  - name: my-service-nginx
    newName: my-service-nginx
    newTag: unreleased
"""


def test_the_tag_is_set_on_both_images_and_the_rest_is_kept() -> None:
    named = release.named(KUSTOMIZATION, None, "v1.4.0")
    assert named == KUSTOMIZATION.replace("newTag: unreleased", "newTag: v1.4.0")


def test_a_repository_names_the_apps_image_and_nginxs_beside_it() -> None:
    named = release.named(KUSTOMIZATION, "ghcr.io/org/my-service", "3f2c1ab")
    assert "    newName: ghcr.io/org/my-service\n    newTag: 3f2c1ab\n" in named
    assert "    newName: ghcr.io/org/my-service-nginx\n    newTag: 3f2c1ab\n" in named
    assert named.startswith("resources:\n  - deployment.yaml\n# The images the Deployment runs.\n")


def test_without_a_tag_or_an_images_entry_it_refuses(tmp_path: Path) -> None:
    kustomization = tmp_path / "kustomization.yaml"
    kustomization.write_text(KUSTOMIZATION)
    with pytest.raises(release.ReleaseFailed, match="^IMAGE_TAG is unset"):
        release.release(kustomization, None, None)
    with pytest.raises(release.ReleaseFailed, match="no images: entry"):
        release.named("resources:\n  - deployment.yaml\n", None, "v1")
    assert release.release(kustomization, None, "v2") == "my-service:v2, my-service-nginx:v2"
