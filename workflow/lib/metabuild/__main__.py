"""Command line: ``python -m metabuild <command>`` (or the ``metabuild`` script).

Each command lives in its own module (of :mod:`metabuild.audit`, or :mod:`metabuild.scaffold`) exposing ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; add a command by adding its module name to
``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> module (imported only when the command runs or help is built)
COMMANDS: dict[str, str] = {
    "explain": "metabuild.audit.explain",
    "impact": "metabuild.audit.impact",
    "diff": "metabuild.audit.diff",
    "replay": "metabuild.audit.replay",
    "revision": "metabuild.audit.revision",
    "new": "metabuild.scaffold",
    "preview": "metabuild.preview",
    "ro-crate": "metabuild.run_crate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metabuild", description="Audit the numbers of a metabuild manuscript build."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or "").strip() or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from metabuild.audit.common import AuditError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AuditError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
