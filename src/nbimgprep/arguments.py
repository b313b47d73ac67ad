"""The one argument grammar of the cache commands, shared by ``%imgcache`` and ``nbimgprep``.

Both faces parse with the parsers built here and then call the same functions in
:mod:`nbimgprep.commands`, so a flag means the same thing in a notebook and in a terminal.
argparse exits the process on a bad argument or ``-h``; inside a kernel that would be a
``SystemExit`` traceback, so :class:`CommandParser` raises instead: :class:`ArgumentsError`
(the magic turns it into IPython's ``UsageError``, the command line exits 2) and
:class:`HelpRequested` (both faces print the help text).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NoReturn

from .argument_types import parse_count, parse_days, parse_limit, parse_size
from .commands import CLEAN_CONFIRM_LIMIT
from .errors import NbimgprepError
from .operations import OPERATIONS
from .store import DEFAULT_MAX_AGE_DAYS

__all__ = [
    "ArgumentsError",
    "CommandParser",
    "HelpRequested",
    "cache_parser",
    "cli_parser",
    "full_help",
    "parse",
    "parse_size",
]


class ArgumentsError(NbimgprepError, ValueError):
    """The command line could not be parsed; ``str()`` gives the usage and what was wrong."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.prog = prog

    def __str__(self) -> str:
        return f"{self.usage.rstrip()}\n{self.prog}: error: {self.message}"


class HelpRequested(Exception):
    """``-h``/``--help`` was given: not an error, the caller shows :attr:`text` and stops."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and calling ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentsError(message, self.format_usage(), self.prog)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ArgumentsError(
            (message or "").strip() or "invalid arguments", self.format_usage(), self.prog
        )

    def print_help(self, file: object = None) -> None:
        raise HelpRequested(self.format_help())


def _add_cache_dir(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=argparse.SUPPRESS if suppress else None,
        help="the store's directory (default: $NBIMGPREP_CACHE_DIR or ./.cache/nbimgprep)",
    )


def _add_cache_commands(
    subparsers: argparse._SubParsersAction[CommandParser], *, cache_dir_flag: bool
) -> None:
    """The cache subcommands; their ``command`` default names the function to call."""

    def add(name: str, help: str, description: str) -> CommandParser:
        sub = subparsers.add_parser(name, help=help, description=description)
        sub.set_defaults(command=name)
        if cache_dir_flag:
            _add_cache_dir(sub, suppress=True)
        return sub

    sub = add(
        "list",
        "one row per cached result",
        "List the cached results: short key, short image hash, operation, endpoint, size, "
        "dimensions, age and hits.",
    )
    sub.add_argument("--op", choices=sorted(OPERATIONS), help="only this operation")
    sub.add_argument(
        "--tag",
        metavar="TAG",
        help="only results carrying this tag (a Review's decisions: accepted, rejected)",
    )
    sub.add_argument("--limit", type=parse_limit, metavar="N", help="at most N rows")
    _add_shared_flag(sub)
    sub.add_argument(
        "--sort",
        choices=("age", "hits", "size"),
        default="age",
        help="age: newest first (default); hits: most hit first; size: largest first",
    )

    sub = add(
        "inspect",
        "everything recorded for one image's results",
        "Show everything recorded for the entries of one image (or one entry), with the "
        "input and its results side by side.",
    )
    sub.add_argument(
        "query", metavar="KEY|HASH_PREFIX|IMAGE_PATH", help="a key or image-hash prefix, or a file"
    )
    _add_shared_flag(sub)

    sub = add(
        "stats",
        "entries, bytes, hits, misses, hit rate, time saved",
        "Entries, bytes on disk, hits, misses, hit rate and backend seconds saved, in total "
        "and per operation.",
    )
    _add_shared_flag(sub)

    sub = add(
        "clean",
        "remove old, oversized or broken entries",
        f"Remove entries. With no criterion, entries unused for {DEFAULT_MAX_AGE_DAYS:g} days "
        "go (like the original cleanup script); criteria combine: an entry goes if any of "
        "them says so. "
        f"Without --yes, a clean that would remove more than {CLEAN_CONFIRM_LIMIT} entries "
        "removes nothing and lists them.",
    )
    sub.add_argument(
        "--max-age-days",
        type=parse_days,
        metavar="N",
        help="remove entries not created or hit in the last N days (0 removes everything)",
    )
    sub.add_argument(
        "--max-size",
        type=parse_size,
        metavar="SIZE",
        help="evict the least recently hit entries until the store fits in SIZE (e.g. 2GB)",
    )
    sub.add_argument(
        "--missing", action="store_true", help="remove entries whose result file is gone"
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="show what would be removed, remove nothing"
    )
    sub.add_argument(
        "--yes",
        action="store_true",
        help=f"allow removing more than {CLEAN_CONFIRM_LIMIT} entries",
    )
    _add_shared_flag(
        sub,
        "clean the team's shared cache instead: records made more than --max-age-days ago, "
        "then the result files no record points to; always needs --yes",
    )

    sub = add(
        "rm",
        "delete one entry, or all entries of one image",
        "Delete the entry with this key, or every entry of the image with this hash; shows "
        "what it deletes.",
    )
    sub.add_argument("query", metavar="KEY|HASH_PREFIX", help="a key or image-hash prefix")

    sub = add(
        "verify",
        "re-hash every result, drop corrupt or missing ones",
        "Re-hash every result file; entries whose file is missing or corrupt are dropped.",
    )
    _add_shared_flag(
        sub,
        "re-hash every result in the team's shared cache instead, and list the records whose "
        "result is missing or damaged (report only: nothing is removed)",
    )

    sub = add(
        "export",
        "write the original app's JSON cache file",
        "Write the original app's cache file ({image_hash: {bgRemoved, upscaled, "
        "faceDetailed, timestamp}}), newest entry per image and operation, absolute paths.",
    )
    sub.add_argument("path", metavar="PATH", help="the JSON file to write")
    sub.add_argument(
        "--format", choices=("legacy",), default="legacy", help="legacy (the default and only)"
    )

    sub = add(
        "import",
        "bring in the original app's JSON cache file",
        "Copy the results listed in the original app's cache file into the store (never "
        "moving or deleting them); missing files are skipped and counted.",
    )
    sub.add_argument("path", metavar="PATH", help="the JSON file to read")
    sub.add_argument(
        "--root",
        metavar="DIR",
        help="where the file's /uploads/... paths live on disk (default: the file's directory)",
    )
    _add_shared_commands(add)


def _add_shared_flag(sub: CommandParser, help: str | None = None) -> None:
    sub.add_argument(
        "--shared",
        action="store_true",
        help=help
        or "the team's shared cache ($NBIMGPREP_CACHE_URL, or ImgCacheMagics.shared) "
        "instead of the local store",
    )


def _add_shared_commands(add: Callable[[str, str, str], CommandParser]) -> None:
    """``push`` and ``pull``: entries between the local store and the shared cache."""
    for name, help, description in (
        (
            "push",
            "upload local entries the shared cache lacks",
            "Upload to the shared cache ($NBIMGPREP_CACHE_URL) the local entries it does not "
            "have yet (made offline, or while it was unreachable), with a progress bar.",
        ),
        (
            "pull",
            "copy shared entries into the local store",
            "Copy into the local store the shared cache's entries it does not have yet, each "
            "checked against its SHA-256, with a progress bar.",
        ),
    ):
        add(name, help, description)


def _add_run_command(
    subparsers: argparse._SubParsersAction[CommandParser], *, cache_dir_flag: bool
) -> None:
    sub = subparsers.add_parser(
        "run",
        help="process images through the cache",
        description="Run OP on each image through the cache and print, per image, whether it "
        "was a cache hit, fresh or failed, and the result's path. IMAGE may be a file, a folder "
        "(its images) or a quoted glob ('shoot/**/*.jpg').",
    )
    sub.set_defaults(command="run")
    if cache_dir_flag:
        _add_cache_dir(sub, suppress=True)
    sub.add_argument(
        "operation", metavar="OP", choices=sorted(OPERATIONS), help=", ".join(sorted(OPERATIONS))
    )
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="image files, folders or globs")
    sub.add_argument("--scale", type=int, choices=(2, 4), help="upscale factor: 2 or 4")
    sub.add_argument(
        "--backend",
        choices=("local", "fal"),
        help="default: fal if FAL_KEY is set, else local",
    )
    sub.add_argument(
        "--refresh", action="store_true", help="call the backend even on a hit; replace the entry"
    )
    sub.add_argument(
        "--concurrency",
        type=parse_limit,
        metavar="N",
        help="calls in flight at once (default 16; raise it with your fal.ai account's limit)",
    )
    sub.add_argument(
        "--max-fresh",
        type=parse_count,
        metavar="N",
        help="make at most N fresh (paid) calls; the images past it fail with 'over budget'",
    )
    sub.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (hits, shared hits, fresh calls, output megapixels); call nothing",
    )


def cache_parser(prog: str = "%imgcache") -> CommandParser:
    """The ``%imgcache`` grammar: the cache subcommands (and ``run``)."""
    parser = CommandParser(
        prog=prog,
        description="Look into and look after the nbimgprep result cache.",
    )
    subparsers = parser.add_subparsers(
        title="subcommands", metavar="SUBCOMMAND", parser_class=CommandParser
    )
    subparsers.required = True
    # The store is a setting there (%config ImgCacheMagics.cache_dir), not a flag.
    _add_cache_commands(subparsers, cache_dir_flag=False)
    _add_run_command(subparsers, cache_dir_flag=False)
    return parser


def cli_parser(prog: str = "nbimgprep") -> CommandParser:
    """The ``nbimgprep`` grammar: ``cache <subcommand>`` and ``run``."""
    parser = CommandParser(
        prog=prog,
        description="nbimgprep from a terminal: process images and look after the result cache.",
    )
    _add_cache_dir(parser, suppress=False)
    top = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=CommandParser)
    top.required = True
    cache = top.add_parser(
        "cache",
        help="list, inspect, stats, clean, rm, verify, export, import",
        description="Look into and look after the result cache.",
    )
    _add_cache_dir(cache, suppress=True)
    subparsers = cache.add_subparsers(
        title="subcommands", metavar="SUBCOMMAND", parser_class=CommandParser
    )
    subparsers.required = True
    _add_cache_commands(subparsers, cache_dir_flag=True)
    _add_run_command(top, cache_dir_flag=True)
    return parser


def parse(parser: CommandParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``, then check what argparse cannot: ``--scale`` only where OP takes it."""
    args = parser.parse_args(list(argv))
    if getattr(args, "command", None) == "run" and args.scale is not None:
        takes = {p.name for p in OPERATIONS[args.operation].params}
        if "scale" not in takes:
            run = next(
                sub
                for action in parser._actions
                if isinstance(action, argparse._SubParsersAction)
                for name, sub in action.choices.items()
                if name == "run"
            )
            run.error(f"{args.operation} does not take --scale (only upscale does)")
    return args


def full_help(parser: argparse.ArgumentParser) -> str:
    """The parser's help followed by every subcommand's, for ``%imgcache?`` and docs."""
    parts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                parts.append(full_help(sub))
    return "\n".join(parts)
