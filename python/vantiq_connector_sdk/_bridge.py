"""The asyncio end of the bridge to the Rust core (see python/src/bridge.rs).

One ``LoopBridge`` per event loop is woken by the Rust side: by default through a socket
it watches with ``loop.add_reader``; where the loop has no ``add_reader`` (Windows'
Proactor loop), or when ``VANTIQ_CONNECTOR_WAKE=thread`` is set, through a thread that
waits for the core and calls ``loop.call_soon_threadsafe``. Its callback takes everything
the Rust side has queued at once and routes it: completions resolve their futures, log
records go to ``logging``, and events (connect, publish, query, close) go to their
source's inbox, which that source's dispatcher task works through in order, awaiting each
handler as the official SDK does.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import logging
import os
import threading
import weakref
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from . import _native

__all__ = ["LoopBridge", "for_loop", "emit_log", "STOP"]

_log = logging.getLogger("vantiqconnectorsdk")

#: The environment variable that forces a way of waking the loop: ``reader`` or ``thread``.
WAKE_ENV = "VANTIQ_CONNECTOR_WAKE"

_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBridge]" = (
    weakref.WeakKeyDictionary()
)

#: Put in an inbox to end its dispatcher once what came before is handled.
STOP = ("stop",)


def emit_log(level: int, name: str, message: str) -> None:
    """Emits a record of the Rust core through Python's logging."""
    logger = logging.getLogger(name)
    if logger.isEnabledFor(level):
        logger.log(level, "%s", message)


class Inbox:
    """The events of one source, handled one at a time by its dispatcher task."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: Deque[tuple] = collections.deque()
        self.waiter: Optional[asyncio.Future] = None

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def get(self, loop: asyncio.AbstractEventLoop) -> tuple:
        while not self.items:
            self.waiter = loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.popleft()


class LoopBridge:
    """The native bridge of one event loop, and where its items go."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self.futures: Dict[int, asyncio.Future] = {}
        # (set id, source index) -> inbox, for the sets running on this loop.
        self.routes: Dict[Tuple[int, int], Inbox] = {}
        wanted = os.environ.get(WAKE_ENV, "reader")
        if wanted not in ("reader", "thread"):
            raise ValueError(f"{WAKE_ENV} must be reader or thread, not {wanted!r}")
        self.native = self._reader_bridge(loop) if wanted == "reader" else None
        if self.native is None:
            self.native = _native.Bridge(thread=True)
            # The thread holds the loop and this bridge weakly: it ends when either goes
            # (the finaliser wakes it), or when the loop is closed.
            waiter = threading.Thread(target=_wait, args=(weakref.ref(loop), weakref.ref(self), self.native),
                                      daemon=True, name="vantiq-connector-wake")
            waiter.start()
            _waiters.append((self.native, waiter))
            weakref.finalize(self, self.native.close_wait)

    def _reader_bridge(self, loop: asyncio.AbstractEventLoop) -> Optional[Any]:
        """A bridge whose socket ``loop`` watches, or ``None`` where the loop (or the
        platform) cannot watch one."""
        try:
            native = _native.Bridge()
            loop.add_reader(native.fileno(), self._wake)
        except NotImplementedError:
            return None
        return native

    @property
    def mode(self) -> str:
        """How the core wakes this loop: ``"reader"`` or ``"thread"``."""
        return self.native.mode



    def future(self) -> Tuple[int, asyncio.Future]:
        """A token, and the future the Rust side completes under it."""
        token = self.native.token()
        fut = asyncio.get_running_loop().create_future()
        self.futures[token] = fut
        return token, fut

    async def call(self, start: Callable[[int], Any]) -> Any:
        """Calls ``start(token)`` (which starts a Rust task) and awaits its completion."""
        token, fut = self.future()
        try:
            start(token)
        except BaseException:
            del self.futures[token]
            raise
        return await fut

    def _wake(self) -> None:
        try:
            items = self.native.take()
        except Exception:  # pragma: no cover - a bug in the native side
            _log.exception("could not take the core's events")
            return
        woken = []
        routes = self.routes
        for item in items:
            kind = item[0]
            if kind == "d":
                fut = self.futures.pop(item[1], None)
                if fut is not None and not fut.done():
                    if item[2]:
                        fut.set_result(item[3])
                    else:
                        fut.set_exception(item[3])
            elif kind == "l":
                emit_log(item[1], item[2], item[3])
            elif kind == "e":
                _log.error("an event from the core could not be converted: %r", item[1])
            else:
                inbox = routes.get((item[1], item[2]))
                if inbox is None:
                    # A set no longer running on this loop: an unanswered query is
                    # answered with an error by the core when its handle goes.
                    continue
                inbox.items.append(item)
                if inbox.waiter is not None:
                    woken.append(inbox)
        for inbox in woken:
            inbox.wake()


#: The thread mode's threads and their bridges, ended before the interpreter finalises.
_waiters: "list[tuple[Any, threading.Thread]]" = []


@atexit.register
def _end_waiters() -> None:
    """Ends the waiting threads while the interpreter can still take them back: a daemon
    thread that wakes in the core (without the GIL) once the interpreter finalises would
    be ended by it in the middle of Rust code, which crashes the process."""
    waiters = list(_waiters)
    for native, _ in waiters:
        native.close_wait()
    for _, thread in waiters:
        thread.join(timeout=5)


def _wait(loop_ref: "weakref.ref[asyncio.AbstractEventLoop]", bridge_ref: "weakref.ref[LoopBridge]",
          native: Any) -> None:
    """The thread mode's thread: hands each wake-up of the core to the loop."""
    try:
        _run_waiter(loop_ref, bridge_ref, native)
    finally:
        _waiters[:] = [(n, t) for n, t in _waiters if n is not native]


def _run_waiter(loop_ref: "weakref.ref[asyncio.AbstractEventLoop]", bridge_ref: "weakref.ref[LoopBridge]",
                native: Any) -> None:
    while native.wait():
        loop, bridge = loop_ref(), bridge_ref()
        if loop is None or bridge is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(bridge._wake)
        except RuntimeError:  # closed meanwhile
            return
        del loop, bridge


def for_loop(loop: asyncio.AbstractEventLoop) -> LoopBridge:
    """The bridge of ``loop``, made on first use."""
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = LoopBridge(loop)
        _bridges[loop] = bridge
    return bridge
