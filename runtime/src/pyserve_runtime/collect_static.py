"""Collect the static files as they will be served: `pyserve static`.

`make static`, `make local` and the Dockerfile run it. A Django project's own collectstatic does it
(STORAGES in its settings.py picks hashed, compressed or S3 storage). For the other frameworks, into
STATIC_ROOT (default build/static) goes every file of the package's static/ twice: under its own
name and under a name carrying a hash of its content (css/site.0123456789ab.css), with gzip copies
of the text files and staticfiles.json mapping one name to the other. Pages link to the hashed
names, which can be cached for a year because a changed file gets a new name.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import io
import json
import os
import shutil
from pathlib import Path

from .settings import project

# Worth compressing: text. Images like PNG or WOFF2 fonts are compressed already.
COMPRESSIBLE = {".css", ".js", ".mjs", ".svg", ".json", ".txt", ".html", ".map", ".xml"}


def hashed_name(relative: Path, content: bytes) -> Path:
    digest = hashlib.md5(content, usedforsecurity=False).hexdigest()[:12]
    return relative.with_name(f"{relative.stem}.{digest}{relative.suffix}")


def write(target: Path, source: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if target.suffix in COMPRESSIBLE:
        # mtime=0: the same input gives the same bytes, so image layers stay cached.
        target.with_name(target.name + ".gz").write_bytes(gzip.compress(source.read_bytes(), 9, mtime=0))


def collect(source: Path, root: Path, manifest_name: str) -> dict[str, str]:
    paths: dict[str, str] = {}
    for file in sorted(path for path in source.rglob("*") if path.is_file()):
        relative = file.relative_to(source)
        hashed = hashed_name(relative, file.read_bytes())
        write(root / relative, file)
        write(root / hashed, file)
        paths[relative.as_posix()] = hashed.as_posix()
    manifest = {"paths": paths, "version": "1.1"}
    (root / manifest_name).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths


def collect_with_django(package: str) -> str:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{package}.settings")
    # collectstatic uses no secret; settings.py refuses to load without one, so give it a throwaway.
    os.environ.setdefault("DJANGO_SECRET_KEY", "collectstatic-needs-no-secret")
    import django
    from django.core.management import call_command

    django.setup()
    summary = io.StringIO()
    call_command("collectstatic", interactive=False, verbosity=1, stdout=summary)
    return summary.getvalue().strip()


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description="Collect the static files into build/static/.").parse_args(argv)
    chosen = project()
    if chosen.framework == "django":
        print(f"collect_static: {collect_with_django(chosen.package)}")
        return
    site = importlib.import_module(f"{chosen.package}.site")
    root = site.static_root()
    paths = collect(site.STATIC_DIR, root, site.MANIFEST_NAME)
    print(f"collect_static: {len(paths)} files into {root}")


if __name__ == "__main__":
    main()
