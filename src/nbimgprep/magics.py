"""``%imgcache``: the cache commands in a notebook, a thin shell over :mod:`nbimgprep.commands`.

``%load_ext nbimgprep`` registers :class:`ImgCacheMagics`. The magic parses its line with the
shared grammar (:mod:`nbimgprep.arguments`), calls the command function and returns its report,
so the last line of a cell renders as HTML and ``x = %imgcache list`` keeps the data. User
mistakes (bad arguments, an unknown prefix, a missing file) become IPython's ``UsageError``:
a message with the usage, never a traceback and never ``SystemExit``. This is the only module
that converts :class:`~nbimgprep.errors.NbimgprepError` so.

Settings are traitlets, so ``%config ImgCacheMagics.cache_dir = "/data/cache"`` works.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import Enum, Float, TraitError, Unicode, default, observe, validate
from traitlets.config import Configurable

from .arguments import ArgumentsError, HelpRequested, cache_parser, full_help, parse
from .commands import execute, open_store
from .errors import NbimgprepError
from .reports import Report
from .store import DEFAULT_MAX_AGE_DAYS, default_cache_dir

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .processor import Processor
    from .store import ResultStore

__all__ = ["ImgCacheMagics", "load_ipython_extension", "unload_ipython_extension"]

#: Where the shared tier's URL comes from when ``ImgCacheMagics.shared`` is not configured.
SHARED_URL_ENV = "NBIMGPREP_CACHE_URL"

_MAGIC_DOC = """Look into and look after the nbimgprep result cache.

Examples::

    %imgcache list --limit 20
    x = %imgcache list --op upscale --sort hits     # x.entries holds the entries
    %imgcache inspect photos/cat.jpg                # or a key / image-hash prefix
    %imgcache stats
    %imgcache clean --max-age-days 7 --dry-run
    %imgcache clean --max-size 2GB --yes
    %imgcache rm 3fa9c1
    %imgcache verify
    %imgcache export legacy-cache.json
    %imgcache import old-app/.cache/image-processing-cache.json --root old-app/public
    %imgcache run upscale photos/cat.jpg --scale 4
    %imgcache list --shared                         # the team's shared cache
    %imgcache push                                  # upload what the shared cache lacks

Settings: ``%config ImgCacheMagics.cache_dir = "..."`` (default $NBIMGPREP_CACHE_DIR or
./.cache/nbimgprep), ``ImgCacheMagics.backend`` (for ``run``: auto, local or fal),
``ImgCacheMagics.max_age_days`` (what ``clean`` with no criterion removes; {days:g}),
``ImgCacheMagics.shared`` (the team's s3://bucket/prefix; default $NBIMGPREP_CACHE_URL).

"""


@magics_class
class ImgCacheMagics(Magics, Configurable):
    """The ``%imgcache`` line magic and its settings."""

    cache_dir = Unicode(
        config=True,
        help="Where the result store lives (default: $NBIMGPREP_CACHE_DIR or ./.cache/nbimgprep).",
    )
    backend = Enum(
        ("auto", "local", "fal"),
        default_value="auto",
        config=True,
        help="Backend for `%imgcache run`: auto (fal if FAL_KEY is set, else local), local, fal.",
    )
    max_age_days = Float(
        DEFAULT_MAX_AGE_DAYS,
        config=True,
        help="What `%imgcache clean` with no criterion removes: entries unused for this many days.",
    )
    shared = Unicode(
        config=True,
        help="The team's shared cache, s3://bucket/prefix, behind the local store (default: "
        "$NBIMGPREP_CACHE_URL; empty: none). Used by `run` and by `--shared`, push and pull.",
    )

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        # Before the config is applied: setting cache_dir from it calls close().
        self._store: ResultStore | None = None
        self._processors: dict[str, Processor] = {}
        config = shell.config if shell is not None else None
        Configurable.__init__(self, config=config, **kwargs)
        Magics.__init__(self, shell=shell)

    @default("cache_dir")
    def _default_cache_dir(self) -> str:
        return str(default_cache_dir())

    @default("shared")
    def _default_shared(self) -> str:
        return os.environ.get(SHARED_URL_ENV, "").strip()

    @validate("max_age_days")
    def _check_max_age_days(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise TraitError("max_age_days must be 0 or more")
        return value

    @observe("cache_dir", "backend", "shared")
    def _forget_store(self, change: dict[str, Any]) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the store and close the processor (its loop thread and connections)."""
        processors, self._processors = self._processors, {}
        for proc in processors.values():
            proc.close()
        self._store = None

    def store(self, create: bool = True) -> ResultStore:
        """The store at the ``cache_dir`` setting, opened once (again if the setting changes).

        With ``create=False`` (the commands that only read or remove) a folder that holds no
        store is a :class:`~nbimgprep.errors.StoreNotFound` error and stays as it was."""
        if self._store is None:
            self._store = open_store(self.cache_dir, create=create)
        return self._store

    def processor(self, backend: str | None = None) -> Processor:
        """The processor ``run`` uses: this store and ``backend`` (default: the setting).

        Made once per backend and kept, so its event loop, connections and the one-line
        "no FAL_KEY" notice are not repeated on every call."""
        from .processor import Processor

        name = backend or self.backend
        if name not in self._processors:
            self._processors[name] = Processor(
                backend=None if name == "auto" else name, store=self.store(), shared=self.shared
            )
        return self._processors[name]

    @line_magic
    def imgcache(self, line: str) -> Report | None:
        try:
            argv = shlex.split(line, posix=os.name != "nt")  # keep Windows backslashes
            args = parse(cache_parser(), argv)
        except HelpRequested as shown:
            print(shown.text)
            return None
        except ArgumentsError as exc:
            raise UsageError(str(exc)) from None
        except ValueError as exc:  # shlex: unbalanced quotes
            raise UsageError(f"{exc} in: %imgcache {line}") from None
        try:
            return execute(
                args,
                store=self.store,
                processor=lambda: self.processor(getattr(args, "backend", None)),
                default_max_age_days=self.max_age_days,
                shared=self.shared,
            )
        except NbimgprepError as exc:
            raise UsageError(str(exc)) from None


ImgCacheMagics.imgcache.__doc__ = _MAGIC_DOC.format(days=DEFAULT_MAX_AGE_DAYS) + full_help(
    cache_parser()
)


def load_ipython_extension(ip: InteractiveShell) -> None:
    """``%load_ext nbimgprep``: register ``%imgcache`` and make it configurable."""
    if "ImgCacheMagics" in ip.magics_manager.registry:
        return
    magics = ImgCacheMagics(ip)
    ip.register_magics(magics)
    configurables: list[Any] = ip.configurables  # IPython types it as a list of shells
    if magics not in configurables:  # recent IPython adds registered magics itself
        configurables.append(magics)


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """``%unload_ext nbimgprep``: remove ``%imgcache`` and its settings object."""
    magics = ip.magics_manager.registry.pop("ImgCacheMagics", None)
    line_magics = ip.magics_manager.magics["line"]
    if line_magics.get("imgcache") is not None:
        del line_magics["imgcache"]
    if isinstance(magics, ImgCacheMagics):
        magics.close()
        configurables: list[Any] = ip.configurables
        while magics in configurables:
            configurables.remove(magics)
