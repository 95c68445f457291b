"""The ``univr`` command (Typer).

The library's own groups (config, db, model, media) live here; each service registers its groups
through the ``univr.commands`` entry-point group in pyproject.toml, so this module never imports a
service by name and a service that fails to import does not break the others.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from importlib import import_module
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

import typer

from shared.config import get_settings
from shared.output import cell, json_option, show

app = typer.Typer(
    help="univr: universal video retrieval, the whole loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")


def univr_version() -> str:
    try:
        return version("univr")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"univr {univr_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version_: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for expected errors too."),
) -> None:
    """univr: universal video retrieval, the whole loop."""
    if debug:
        os.environ["UNIVR_DEBUG"] = "1"


@config_app.command("show")
def config_show(
    unmask: bool = typer.Option(False, help="Print secrets in clear text."),
    json_out: bool = json_option(),
) -> None:
    """Print the resolved configuration (secrets masked): one ``section.key = value`` line each,
    or the nested JSON with --json."""
    resolved = get_settings().resolved(mask_secrets=not unmask)
    show(resolved, json_out=json_out, indent=2, human=_print_flat)


def _print_flat(tree: dict, prefix: str = "") -> None:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            _print_flat(value, f"{prefix}{key}.")
        else:
            typer.echo(f"{prefix}{key} = {cell(value) if value != {} else '{}'}")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head"), json_out: bool = json_option()) -> None:
    """Create or migrate the schema to REVISION (default: head)."""
    from shared.db.migrate import upgrade

    upgrade(revision)
    url = get_settings().resolved()["database"]["url"]
    result = {"revision": revision, "database": url}
    show(result, json_out=json_out, human=lambda r: typer.echo(f"database at {revision}: {url}"))


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("base"), json_out: bool = json_option()) -> None:
    """Migrate the schema down to REVISION (default: base, i.e. drop everything)."""
    from shared.db.migrate import downgrade

    downgrade(revision)
    result = {"revision": revision}
    show(result, json_out=json_out, human=lambda r: typer.echo(f"database at {revision}"))


BUILTIN_GROUPS = {"model": "shared.model.cli:app", "media": "shared.world.cli:app"}
_mounted: set[str] = set()


def _load(name: str, target: str, load) -> None:  # noqa: ANN001
    try:
        sub = load()
    except (
        ImportError,
        AttributeError,
    ) as exc:  # a part not installed or broken must not hide the others
        print(f"univr: command group '{name}' ({target}) unavailable: {exc}", file=sys.stderr)
        return
    if isinstance(sub, typer.Typer):
        app.add_typer(sub, name=name)
    else:
        app.command(name)(sub)


def _attribute(module: str, attr: str) -> Any:
    return getattr(import_module(module), attr)


def _groups() -> dict[str, tuple[str, Callable[[], Any]]]:
    """Every command group by name: (target, loader), nothing imported yet."""
    groups: dict[str, tuple[str, Callable[[], Any]]] = {}
    for name, target in BUILTIN_GROUPS.items():
        module, attr = target.split(":")
        groups[name] = (target, partial(_attribute, module, attr))
    for ep in sorted(entry_points(group="univr.commands"), key=lambda e: e.name):
        groups[ep.name] = (ep.value, ep.load)
    return groups


OWN_GROUPS = ("config", "db")  # defined in this module: nothing to import


def _named_group(args: list[str], groups: dict) -> str | None:
    """The group a command line names (its first word after the root options): one of
    ``groups``, ``""`` for one of this module's own, None for anything else (help, a typo)."""
    for arg in args:
        if arg == "--debug":
            continue
        if arg in (*OWN_GROUPS, "--version"):
            return ""
        return arg if arg in groups else None
    return None


def build_app(args: list[str] | None = None) -> typer.Typer:
    """Mount the library's and the services' command groups, once per process. Given the command
    line, only the group it names is imported (the others pull in torch, transformers and the
    services: seconds of start-up for every command); for help, a bare ``univr`` or anything not
    naming a group, all of them."""
    groups = _groups()
    named = _named_group(args, groups) if args is not None else None
    everything = sorted(groups, key=lambda n: (n not in BUILTIN_GROUPS, n))
    for name in everything if named is None else [named] if named else []:
        if name not in _mounted:
            _mounted.add(name)
            target, load = groups[name]
            _load(name, target, load)
    return app


def main() -> None:
    """Run the command; an expected failure is one line on stderr and exit code 2 (a traceback
    with ``--debug`` or ``UNIVR_DEBUG=1``), a defect keeps its traceback."""
    from shared.errors import describe

    try:
        build_app(sys.argv[1:])(prog_name="univr")
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - sorted into expected failures and defects below
        reason = describe(exc)
        if reason is None or os.environ.get("UNIVR_DEBUG") or "--debug" in sys.argv[1:]:
            raise
        print(f"univr: error: {reason}", file=sys.stderr)
        sys.exit(2)
