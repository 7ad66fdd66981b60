"""After rendering: keep what the answers chose, remove the rest, record the plan, say what was built.

Runs with the generated project as the working directory. One function per optional part, so a
reader sees at once what each answer adds or takes away.
"""

import atexit
import json
import shutil
import sys
from pathlib import Path

# cookiecutter runs this hook from a rendered copy in the temp directory and leaves it there
# (cookiecutter#886); the copy holds every answer, so it goes when the hook ends, however it ends.
atexit.register(Path(__file__).unlink, missing_ok=True)

sys.path.insert(0, {{ template_root | tojson }})

from pyserve_template import (  # noqa: E402
    RUNTIME_ROOT,
    TEMPLATE_ROOT,
    answers,
    compat,
    cruft_record,
    locking,
    machine,
    plan_inputs,
    presentation,
    records,
    runtime_upgrade,
    strays,
    tuning,
)
from pyserve_template.environment import environment_table  # noqa: E402

CONTEXT = json.loads({{ cookiecutter | tojson | tojson }})
CHOSEN = answers.resolve_or_refuse(CONTEXT)
PACKAGE = Path(CHOSEN.project_slug)
DEPLOY = Path("deploy")


def move_contents(variant: Path, destination: Path) -> None:
    """The variant's files, not its record (server.toml, framework.toml): that is the template's."""
    for item in variant.iterdir():
        if item.name not in {records.SERVER_RECORD, records.FRAMEWORK_RECORD}:
            shutil.move(str(item), str(destination / item.name))


def install_framework() -> None:
    """The chosen framework's sample app moves into the package; the other frameworks go."""
    variants = PACKAGE / "_frameworks"
    move_contents(variants / CHOSEN.framework, PACKAGE)
    shutil.rmtree(variants)


def keep_one_schema_with_a_database() -> None:
    """The sample's schema only with a database, and only its framework's kind: the shared SQL
    migrations (yoyo, linted by squawk), or the framework's own (records.SCHEMA_FILES in its folder)."""
    if CHOSEN.database == "none" or CHOSEN.migrations.tool != "yoyo":
        shutil.rmtree(PACKAGE / "migrations")
        Path(".squawk.toml").unlink()
    if CHOSEN.database == "none":
        Path("tests/test_migrations.py").unlink()
        for name in records.SCHEMA_FILES:
            own = PACKAGE / "_frameworks" / CHOSEN.framework / name
            if own.is_dir():
                shutil.rmtree(own)
            else:
                own.unlink(missing_ok=True)


def remove_django_files() -> None:
    if CHOSEN.framework != "django":
        Path("manage.py").unlink()


def install_server() -> None:
    """The chosen server's config, where it has one, moves into deploy/; the other servers' go."""
    variants = DEPLOY / "_servers"
    move_contents(variants / CHOSEN.server, DEPLOY)
    shutil.rmtree(variants)


def remove_nginx_static_files() -> None:
    """nginx serves /static/ for the nginx strategy and, as the CDN's origin, for cdn."""
    if CHOSEN.static_strategy not in {"nginx", "cdn"}:
        shutil.rmtree(DEPLOY / "nginx" / "templates" / "locations")


def remove_app_static_serving() -> None:
    if CHOSEN.static_strategy != "whitenoise":
        (PACKAGE / "static_files.py").unlink()


def remove_static_assets() -> None:
    if CHOSEN.static_strategy == "none":
        shutil.rmtree(PACKAGE / "static")


def remove_database_pool() -> None:
    """The pool of the frameworks without one of their own: Django's is in its settings."""
    if CHOSEN.database == "none" or CHOSEN.framework == "django":
        (PACKAGE / "database.py").unlink()


def vendor_the_runtime() -> None:
    """The runtime package, as this template holds it, into vendor/: pyproject.toml installs it from
    there (a path dependency), so a bake needs no index beyond PyPI and every bake of one template
    commit carries the same bytes. `pyserve runtime-upgrade` replaces it with a newer one."""
    runtime_upgrade.vendor(RUNTIME_ROOT, runtime_upgrade.VENDOR_DIR)


def remove_kubernetes() -> None:
    if not CHOSEN.use_kubernetes:
        shutil.rmtree(DEPLOY / "k8s")


def shipped_plan() -> tuning.Plan:
    """The plan in a container with exactly the answered limits (not this machine's: it is not the container)."""
    return plan_inputs.plan_from_environment({}, machine.load_stack(DEPLOY / "stack.toml"))


def choice_line(name: str, value: str, reason: str) -> str:
    return f"{name}: {value}" + ("" if reason == "as asked" else f" (auto: {reason})")


def summary(plan: tuning.Plan) -> str:
    return "\n".join(
        [
            choice_line("interface", CHOSEN.interface.upper(), CHOSEN.interface_reason),
            choice_line("server", CHOSEN.server, CHOSEN.server_reason),
            f"static files: {CHOSEN.static_strategy}",
            presentation.describe(plan),
        ]
    )


def faults_markdown() -> str:
    behaviour = compat.fault_behaviour(CHOSEN.server, CHOSEN.interface)
    return "\n".join(f"- **{compat.FAULT_NAMES[fault]}**: {text}." for fault, (text, _) in behaviour.items())


def engine_faults_markdown() -> str:
    behaviour = compat.engine_fault_behaviour(CHOSEN.server)
    return "\n".join(f"- **{compat.ENGINE_FAULT_NAMES[fault]}**: {text}." for fault, text in behaviour.items())


def caveats() -> str:
    """What this server does not survive: said when the project is generated, as well as in its README."""
    behaviour = compat.fault_behaviour(CHOSEN.server, CHOSEN.interface)
    lines = [f"  {compat.FAULT_NAMES[fault]}: {text}." for fault, (text, survived) in behaviour.items() if not survived]
    if not lines:
        return ""
    heading = f"note: {CHOSEN.server} does not survive every fault (README.md, When things go wrong):"
    return "\n".join([heading, *lines, ""])


def write_into_readme(plan: tuning.Plan) -> None:
    readme = Path("README.md")
    text = readme.read_text(encoding="utf-8")
    text = text.replace("<!-- plan -->", "```text\n" + summary(plan) + "\n```")
    text = text.replace("<!-- faults -->", faults_markdown())
    text = text.replace("<!-- environment -->", environment_table(CHOSEN.interface, CHOSEN.framework, CHOSEN.database))
    readme.write_text(text.replace("<!-- engine faults -->", engine_faults_markdown()), encoding="utf-8")


def record_the_template() -> str:
    """.cruft.json, from which cruft brings this project the template's later changes. cruft's own
    renders (create, and both sides of an update) write it themselves, so they get nothing here."""
    if cruft_record.rendered_by_cruft(CONTEXT):
        return ""
    try:
        state = cruft_record.cruft_state(CONTEXT, TEMPLATE_ROOT)
    except cruft_record.NotRecordable as error:
        return f"note: no {cruft_record.CRUFT_FILE}: {error}; `cruft link` can link the project later.\n"
    Path(cruft_record.CRUFT_FILE).write_text(cruft_record.as_json(state), encoding="utf-8")
    return ""


def lock_the_dependencies() -> str:
    """uv.lock and loadtest/uv.lock, from the pyproject.toml beside each (pyserve_template/locking.py).
    In cruft's renders of an update too, though `make template-update` keeps the project's own locks
    and re-locks them."""
    return locking.lock_all(Path.cwd())


def remove_what_runs_left() -> None:
    """Bytecode, tool caches and the like that a run left in the template's folder (pyserve_template/strays.py)."""
    strays.remove_strays(Path("."))


def main() -> None:
    remove_what_runs_left()
    keep_one_schema_with_a_database()
    install_framework()
    remove_django_files()
    install_server()
    remove_nginx_static_files()
    remove_app_static_serving()
    remove_static_assets()
    remove_database_pool()
    remove_kubernetes()
    vendor_the_runtime()
    plan = shipped_plan()
    write_into_readme(plan)
    note = record_the_template() + lock_the_dependencies()
    print(f"\n{CHOSEN.project_name} -> ./{CHOSEN.project_slug}\n" + summary(plan) + "\n" + caveats() + note)


if __name__ == "__main__":
    main()
