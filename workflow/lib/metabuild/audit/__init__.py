"""Audit tools over a finished (or future) build: ``python -m metabuild <command>``.

* :mod:`~metabuild.audit.explain` - the provenance chain of one reported number;
* :mod:`~metabuild.audit.impact` - which reported numbers depend on a study or a data cell;
* :mod:`~metabuild.audit.diff` - what changed between two builds (or git revisions), and why;
* :mod:`~metabuild.audit.replay` - rebuild one number in a clean copy and compare.

Each command module exposes ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
:mod:`metabuild.__main__` registers them (see ``COMMANDS`` there).
"""

COMMAND_MODULES = ("explain", "impact", "diff", "replay")
