"""Command-line interface: ``python -m ml <command> ...``.

One ``argparse`` parser; ``models`` is built in and each pipeline whose ``ml/<pipeline>/cli.py``
exists adds its commands through ``register(subparsers) -> None``. A command sets its handler with
``parser.set_defaults(handler=function)`` (``func=`` is accepted too); the handler takes the parsed
``argparse.Namespace`` and returns the exit status (``None`` means 0). Handlers raise
:class:`CommandError` (or ``ImageLoadError``/``ValueError`` for bad input) to fail with a clear message.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ml.registry import PIPELINES, UnknownModelError, registry

EXIT_USAGE = 2


class CommandError(Exception):
    """A command failed for a reason the user can act on; the message is printed without a traceback."""


def print_json(document: Any) -> None:
    """Write a JSON document to standard output."""
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _models_list(args: argparse.Namespace) -> int:
    names = registry.names(task=args.task)
    if args.json:
        print_json([registry.describe(name) for name in names])
    else:
        for name in names:
            spec = registry.spec(name)
            trained = "" if spec.trained else "  [untrained]"
            print(f"{spec.name:<24} {spec.task:<12} {spec.version}{trained}")
        if not names:
            print("No models are registered.")
    for module, reason in registry.discovery_errors().items():
        print(f"warning: {module} could not be imported: {reason}", file=sys.stderr)
    return 0


def _models_describe(args: argparse.Namespace) -> int:
    print_json(registry.describe(args.name))
    return 0


def _register_models(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="List and describe registered models.")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="List registered models.")
    listing.add_argument("--task", help="Only models for this task (landmarks, zones, ...).")
    listing.add_argument("--json", action="store_true", help="Print full JSON descriptions.")
    listing.set_defaults(handler=_models_list)
    describe = actions.add_parser(
        "describe", help="Describe one model as JSON (version, weights SHA-256, ...)."
    )
    describe.add_argument("name")
    describe.set_defaults(handler=_models_describe)


def build_parser(pipelines: Sequence[str] = PIPELINES) -> argparse.ArgumentParser:
    """The parser, with the subcommands of each of ``pipelines`` present in this checkout."""
    parser = argparse.ArgumentParser(prog="python -m ml", description="Facet machine-learning tools.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_models(subparsers)
    for pipeline in pipelines:
        module_name = f"ml.{pipeline}.cli"
        try:
            found = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            found = None
        if found is not None:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the process exit status."""
    for variable, value in (("HF_HUB_OFFLINE", "1"), ("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "False")):
        os.environ.setdefault(variable, value)
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    # Build only the requested pipeline's commands so one pipeline does not pay for another's imports.
    parser = build_parser((command,) if command in PIPELINES else PIPELINES)
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ml.core.imageio import ImageLoadError

    try:
        status = handler(args)
    except (CommandError, ImageLoadError, UnknownModelError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, CommandError | ImageLoadError | UnknownModelError) else 1
    except BrokenPipeError:
        # The reader (e.g. `head`) closed the pipe; silence the interpreter's flush error on exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    return 0 if status is None else int(status)
