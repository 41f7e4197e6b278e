"""``VantiqConnectorSet``: every source of one server.config, as in the official SDK."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any, Dict, List, Optional

from . import _bridge, _logging, _native
from ._connection import CloseHandler, MessageHandler, VantiqSourceConnection
from ._settings import Settings

__all__ = ["VantiqConnectorSet"]

_log = logging.getLogger("vantiqconnectorsdk")
_ids = itertools.count(1)

#: How long the dispatchers may take to finish the events queued before a stop.
_DRAIN_SECONDS = 5.0


def _retrieved(task: asyncio.Task) -> None:
    # A dispatcher ends with an exception only when a handler raised SystemExit or
    # KeyboardInterrupt, which asyncio re-raises from the loop itself; marking it
    # retrieved spares a second report of it.
    if not task.cancelled():
        task.exception()


class VantiqConnectorSet:
    """The sources of ``serverConfig/server.config`` (or ``server.config``) in the working
    directory, and the connector's health.

    ``settings`` (keyword only, an extension) tunes the Rust core: see ``Settings``.
    ``directory`` (an extension) reads server.config from there instead.
    """

    def __init__(self, *, settings: Optional[Settings] = None, directory: Optional[os.PathLike] = None) -> None:
        self._id = next(_ids)
        self._native = _native.NativeSet(
            None if directory is None else os.fspath(directory),
            (settings or Settings()).to_dict(),
        )
        self._sources: List[str] = self._native.sources()
        self._server_config: Dict[str, Any] = self._native.properties()
        self._connections: Dict[str, VantiqSourceConnection] = {
            name: VantiqSourceConnection(name, self, i) for i, name in enumerate(self._sources)
        }
        self._loop_bridge: Optional[_bridge.LoopBridge] = None
        self._started: Optional[asyncio.Future] = None
        self._dispatchers: Dict[int, asyncio.Task] = {}

    def __str__(self) -> str:
        ret = "VantiqConnectorSet for "
        for src in self._sources:
            ret += "\n\t" + str(self._connections[src])
        return ret

    def __repr__(self) -> str:
        return "VantiqConnectorSet()"

    # The official API ------------------------------------------------------------------

    def get_logger(self) -> logging.Logger:
        """The SDK's logger (``vantiq_connector_sdk``)."""
        return _logging.sdk_logger()

    def get_sources(self) -> List[str]:
        """The source names, in the order of ``sources``."""
        return self._sources

    def get_connections(self) -> Dict[str, VantiqSourceConnection]:
        """The connections, by source name."""
        return self._connections

    def get_connection_for_source(self, source_name: str) -> Optional[VantiqSourceConnection]:
        """The connection of ``source_name``, or ``None``."""
        return self._connections.get(source_name)

    def configure_handlers_for_all(self, handle_close: CloseHandler, handle_connect: MessageHandler,
                                   handle_publish: MessageHandler, handle_query: MessageHandler) -> None:
        """Sets the same handlers on every source (see
        ``VantiqSourceConnection.configure_handlers``)."""
        for conn in self._connections.values():
            conn.configure_handlers(handle_close, handle_connect, handle_publish, handle_query)

    async def declare_healthy(self) -> None:
        """Declares the connector healthy: the TCP health probe listens on ``tcpProbePort``
        (default 8000)."""
        self._native.declare_healthy()

    async def declare_unhealthy(self) -> None:
        """Declares the connector unhealthy: the probe stops listening."""
        self._native.declare_unhealthy()

    def is_healthy(self) -> Optional[bool]:
        """``True``/``False`` as last declared, ``None`` before any declaration."""
        return self._native.is_healthy()

    async def run_connectors(self) -> None:
        """Connects every source and serves them until ``close()`` (reconnecting after any
        loss). Raises when the connectors cannot go on: rejected credentials
        (``AuthenticationError``), or a failed connection with
        ``failOnConnectionError=true`` (``ConnectError``)."""
        await self._run(None)

    async def close(self) -> None:
        """Closes every connection for good and stops the health probe."""
        await self._close(None)
        self._native.declare_unhealthy()

    @property
    def healthy(self) -> Optional[bool]:
        """The official attribute: ``is_healthy()``."""
        return self._native.is_healthy()

    @property
    def socket_server(self) -> Optional[Any]:
        """The official attribute: not ``None`` while the health probe listens (the
        official SDK's holds its asyncio server; here the probe runs in the core, and this
        is the port it listens on)."""
        return self._native.probe_port()

    # Extensions ------------------------------------------------------------------------

    def stats(self) -> Dict[str, dict]:
        """The core's counters of every source, by name."""
        return {name: conn.stats() for name, conn in self._connections.items()}

    async def flush(self) -> None:
        """Waits until every notification sent so far, on every source, is acknowledged."""
        await asyncio.gather(*(c.flush() for c in self._connections.values()))

    def health_probe_port(self) -> Optional[int]:
        """The port the health probe listens on now (useful with ``tcpProbePort=0``)."""
        return self._native.probe_port()

    # Internals -------------------------------------------------------------------------

    def _running_native(self) -> Any:
        return self._native if self._loop_bridge is not None else None

    async def _wait_started(self) -> Any:
        if self._loop_bridge is None:
            if self._started is None:
                self._started = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._started)
        return self._native

    def _start(self, loop: asyncio.AbstractEventLoop) -> _bridge.LoopBridge:
        if self._loop_bridge is None:
            bridge = _bridge.for_loop(loop)
            _logging.refresh_log_level()
            self._native.start(bridge.native, self._id)
            self._loop_bridge = bridge
            if self._started is not None and not self._started.done():
                self._started.set_result(None)
        elif _bridge.for_loop(loop) is not self._loop_bridge:
            raise RuntimeError("this connector set already runs on another event loop")
        return self._loop_bridge

    async def _run(self, only: Optional[VantiqSourceConnection]) -> None:
        loop = asyncio.get_running_loop()
        bridge = self._start(loop)
        conns = list(self._connections.values()) if only is None else [only]
        for conn in conns:
            key = (self._id, conn._index)
            if key in bridge.routes:
                raise RuntimeError(f"source {conn.source_name} is already running")
            bridge.routes[key] = conn._inbox
            task = loop.create_task(conn._serve(loop))
            task.add_done_callback(_retrieved)
            self._dispatchers[conn._index] = task
        index = None if only is None else only._index
        try:
            await bridge.call(lambda token: self._native.run(bridge.native, token, index))
        except asyncio.CancelledError:
            # Cancelled (Ctrl-C, asyncio.run ending): close cleanly before going.
            try:
                await asyncio.wait_for(self._close(index), _DRAIN_SECONDS)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            await self._stop_dispatchers(bridge, conns)
            raise
        except GeneratorExit:
            # The coroutine is being destroyed (its loop was abandoned): nothing can be
            # awaited any more. Ask the core to close, and go.
            self._native.close(bridge.native, bridge.native.token(), index)
            raise
        except BaseException:
            await self._stop_dispatchers(bridge, conns)
            raise
        else:
            await self._stop_dispatchers(bridge, conns)

    async def _stop_dispatchers(self, bridge: _bridge.LoopBridge, conns: List[VantiqSourceConnection]) -> None:
        tasks = []
        for conn in conns:
            conn._inbox.items.append(_bridge.STOP)
            conn._inbox.wake()
            task = self._dispatchers.pop(conn._index, None)
            if task is not None:
                tasks.append(task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_DRAIN_SECONDS)
            for task in pending:
                task.cancel()
        for conn in conns:
            bridge.routes.pop((self._id, conn._index), None)
            conn._inbox.items.clear()

    async def _close(self, index: Optional[int]) -> None:
        bridge = self._loop_bridge
        if bridge is None:
            return
        await bridge.call(lambda token: self._native.close(bridge.native, token, index))
