"""``nbimgprep``: the cache commands and ``run`` in a terminal.

The same grammar (:mod:`nbimgprep.arguments`) and the same command functions
(:mod:`nbimgprep.commands`) as ``%imgcache``; this module only prints reports as text tables
and turns outcomes into exit codes:

* 0: done (an empty list, or nothing old enough to clean, is success);
* 1: ``inspect``/``rm`` matched nothing, ``verify`` found damage, a ``run`` image failed,
  a ``clean`` was refused for want of ``--yes``, or another nbimgprep error;
* 2: bad arguments (the usage is printed to stderr).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .arguments import ArgumentsError, HelpRequested, cli_parser, parse
from .commands import execute, open_store
from .errors import NbimgprepError
from .reports import RunItem, RunSummary

if TYPE_CHECKING:
    from .processor import Processor
    from .store import ResultStore

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nbimgprep`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # Whoever read our output has gone (``nbimgprep cache list | head``): stop quietly,
        # and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = parse(cli_parser(), sys.argv[1:] if argv is None else argv)
    except HelpRequested as shown:
        print(shown.text, end="")
        return 0
    except ArgumentsError as exc:
        print(exc, file=sys.stderr)
        return 2

    cache_dir: str | None = args.cache_dir
    processors: list[Processor] = []

    def make_store(create: bool) -> ResultStore:
        return open_store(cache_dir, create=create)

    def make_processor() -> Processor:
        from .processor import Processor

        processors.append(Processor(backend=args.backend, store=open_store(cache_dir)))
        return processors[-1]

    def show(item: RunItem) -> None:
        print(item.line(), flush=True)  # stdout; the progress bar is on stderr

    try:
        report = execute(args, store=make_store, processor=make_processor, on_item=show)
    except NbimgprepError as exc:
        print(f"nbimgprep: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nbimgprep: interrupted", file=sys.stderr)
        return 130
    finally:
        for proc in processors:
            proc.close()
    # run already printed each image as it went; only the tally is left to say.
    print(report.footer() if isinstance(report, RunSummary) else report)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
