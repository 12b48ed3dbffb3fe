"""File events (watchfiles): the spec directory, recursively, YAML only; and each local file
source, by watching its *directory* (a watch on the file itself goes blind after the first
atomic save, which replaces the inode)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from reconciler.logging import get_logger

OnChanges = Callable[[set[str]], Awaitable[None]]
SPEC_SUFFIXES = (".yaml", ".yml")
#: how often a spec directory given as a symlink is checked for a new target
LINK_CHECK_SECONDS = 1.0


def _real(p: str | Path) -> str:
    return os.path.realpath(p)


class Watcher:
    def __init__(self, on_changes: OnChanges, *, step_ms: int = 50, debounce_ms: int = 1600) -> None:
        self._on_changes = on_changes
        self._step, self._debounce = step_ms, debounce_ms
        self._spec_dir = ""
        #: the spec directory as given, and where it led when last seen (a symlink may move)
        self._given, self._seen = "", ""
        self._sources: frozenset[str] = frozenset()
        self._roots: tuple[str, ...] = ()
        self._restart = asyncio.Event()
        self._stopping = False
        self.alive = False
        self._log = get_logger(component="watcher")

    # -- what to watch ----------------------------------------------------------------------
    def set_targets(self, spec_dir: Path, source_files: Iterable[Path]) -> None:
        """Watch these; restarts the underlying watch only when its directories change."""
        self._spec_dir = self._seen = _real(spec_dir)
        self._given = str(spec_dir)
        self._sources = frozenset(_real(p) for p in source_files)
        roots = {self._spec_dir}
        for f in self._sources:
            parent = os.path.dirname(f)
            if not self._under_spec_dir(parent) and os.path.isdir(parent):
                roots.add(parent)
        new = tuple(sorted(roots))
        if new != self._roots:
            self._roots = new
            self._restart.set()

    def _under_spec_dir(self, path: str) -> bool:
        return path == self._spec_dir or path.startswith(self._spec_dir + os.sep)

    def wanted(self, path: str) -> bool:
        """A source file, or a (non-hidden) YAML file below the spec directory."""
        real = _real(path)
        if real in self._sources:
            return True
        return (self._under_spec_dir(real) and real.endswith(SPEC_SUFFIXES)
                and not os.path.basename(real).startswith("."))

    def is_source(self, path: str) -> bool:
        return _real(path) in self._sources

    # -- loop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True
        self._restart.set()

    async def run(self) -> None:
        follow = asyncio.create_task(self._follow_link())
        try:
            await self._watch()
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow

    async def _follow_link(self) -> None:
        """A spec directory given as a symlink (git-sync's ``--link``, a release's ``current``)
        that now points elsewhere, or one that was gone and is back, is a change of every spec:
        neither shows as an event inside the directory being watched (a new one is not watched
        yet). Said once per new target, and the watch starts again on it."""
        while not self._stopping:
            await asyncio.sleep(LINK_CHECK_SECONDS)
            if not self._given:
                continue
            now = _real(self._given) if os.path.isdir(self._given) else ""
            if now != self._seen:
                self._seen = now
                if now:
                    self._restart.set()
                    await self._deliver({self._given})

    async def _watch(self) -> None:
        from watchfiles import awatch

        while not self._stopping:
            self._restart.clear()
            roots = [r for r in self._roots if os.path.isdir(r)]
            if not roots:
                await self._wait_restart(1.0)
                continue
            self.alive = True
            try:
                async for changes in awatch(*roots, watch_filter=lambda _c, p: self.wanted(p),
                                            stop_event=self._restart, step=self._step,
                                            debounce=self._debounce, recursive=True):
                    await self._deliver({p for _c, p in changes})
            except (OSError, RuntimeError) as e:  # a root vanished: wait, then watch again
                self._log.warning("watch.failed", error_type=type(e).__name__, roots=roots)
                await self._wait_restart(1.0)
            finally:
                self.alive = False

    async def _deliver(self, paths: set[str]) -> None:
        """One batch of events; whatever handling it fails on, the next batch is still watched
        (one bad file must never end file watching)."""
        try:
            await self._on_changes(paths)
        except Exception as e:  # the type only: a message might quote the file's bytes
            self._log.error("watch.handler_failed", error_type=type(e).__name__, files=len(paths))

    async def _wait_restart(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._restart.wait(), seconds)
