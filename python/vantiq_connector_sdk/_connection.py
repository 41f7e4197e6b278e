"""``VantiqSourceConnection``: one source's connection, as in the official SDK.

The connection itself lives in the Rust core; this object holds the source's handlers,
runs them (its dispatcher task awaits them one at a time, in the order the events came,
as the official SDK does), and sends through the core.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import traceback
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from . import _bridge
from ._constants import VantiqConnector
from ._errors import VantiqConnectorException

if TYPE_CHECKING:  # pragma: no cover
    from ._set import VantiqConnectorSet

__all__ = ["VantiqSourceConnection", "QueryContext"]

_log = logging.getLogger("vantiqconnectorsdk")

CloseHandler = Optional[Callable[[dict], Awaitable[None]]]
MessageHandler = Optional[Callable[[dict, Any], Awaitable[None]]]

_QUERY_CODES = (VantiqConnector.QUERY_EMPTY, VantiqConnector.QUERY_COMPLETE, VantiqConnector.QUERY_PARTIAL)


class QueryContext(dict):
    """The context a query handler gets: the dict the official SDK passes
    (``VantiqConnector.SOURCE_NAME``, ``VantiqConnector.RESPONSE_ADDRESS``), which also
    keeps the query open.

    Answer through it from anywhere, at any time: in the handler, from a task it started,
    from a callback. The query stays open while any reference to this context (or to a
    ``copy()`` of it) is held; when the last one goes without a final answer, the SDK
    answers with an error (``io.vantiq.connector.queryNotAnswered``), so no query is left
    waiting. ``Settings.query_deadline`` and ``close()`` answer those still open too.
    A plain ``dict`` copy (``dict(ctx)``) can answer while the query is open, but does not
    keep it open.
    """

    __slots__ = ("_handle",)

    def copy(self) -> "QueryContext":
        """A copy that keeps the query open too."""
        c = QueryContext(self)
        c._handle = self._handle
        return c

    __copy__ = copy


class VantiqSourceConnection:
    """The connection of one source. Get it from the connector set
    (``get_connection_for_source``, ``get_connections``)."""

    def __init__(self, source_name: str, connector_set: "VantiqConnectorSet", index: int) -> None:
        self.source_name = source_name
        self.close_handler: CloseHandler = None
        self.connect_handler: MessageHandler = None
        self.publish_handler: MessageHandler = None
        self.query_handler: MessageHandler = None
        self._connector_set: Optional["VantiqConnectorSet"] = connector_set
        self._set = connector_set
        self._index = index

        self._inbox = _bridge.Inbox()
        config = connector_set._server_config
        # As the official SDK: ``connectKWArgs`` as a dict (``disableSslVerification``
        # turned into an ``ssl`` context that does not verify). The core applies them
        # itself (see the README); these attributes are for connector code that reads them.
        self.connect_kw_args: dict = {}
        self.disable_ssl_check = False
        kw = config.get(VantiqConnector.CONNECT_KW_ARGS)
        if kw is not None:
            kw_args = json.loads(kw)
            if kw_args.get(VantiqConnector.DISABLE_SSL_VERIFICATION):
                self.disable_ssl_check = True
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self.connect_kw_args = {"ssl": ctx}
            else:
                self.connect_kw_args = kw_args

    def __str__(self) -> str:
        return f"VantiqSourceConnection for source: {self.source_name}, is_connected: {self.is_connected}"

    def __repr__(self) -> str:
        # Unlike the official SDK's, never shows the configuration (it holds the token).
        return f"VantiqSourceConnection(source_name={self.source_name!r})"

    # The connector set and health ----------------------------------------------------

    def set_connector_set(self, conn_set: "VantiqConnectorSet") -> None:
        """Sets the connector set this connection's health calls go to."""
        self._connector_set = conn_set

    def get_connector_set(self) -> Optional["VantiqConnectorSet"]:
        """The connector set this connection belongs to."""
        return self._connector_set

    async def declare_healthy(self) -> None:
        """Declares the connector set healthy (the TCP health probe listens)."""
        if self._connector_set is not None:
            await self._connector_set.declare_healthy()

    async def declare_unhealthy(self) -> None:
        """Declares the connector set unhealthy (the probe stops listening)."""
        if self._connector_set is not None:
            await self._connector_set.declare_unhealthy()

    def is_healthy(self) -> Optional[bool]:
        """The set's declared health: ``None`` before any declaration."""
        if self._connector_set is not None:
            return self._connector_set.is_healthy()
        return None

    # Configuration ---------------------------------------------------------------------

    def get_source(self) -> str:
        """The name of the source."""
        return self.source_name

    def get_server_config(self) -> dict:
        """server.config as a dict (``targetServer`` as its WebSocket URL)."""
        return self._set._server_config

    @property
    def config(self) -> dict:
        """The server configuration dict (the official attribute)."""
        return self._set._server_config

    @property
    def is_connected(self) -> bool:
        """Whether the source is connected and configured now."""
        return self._set._native.is_connected(self._index)

    @property
    def connection(self) -> Optional["VantiqSourceConnection"]:
        """Not ``None`` while connected (the official SDK's attribute holds its WebSocket;
        code only tests it against ``None``)."""
        return self if self.is_connected else None

    def configure_handlers(self, handle_close: CloseHandler, handle_connect: MessageHandler,
                           handle_publish: MessageHandler, handle_query: MessageHandler) -> None:
        """Sets the close, connect, publish and query handlers (``async def`` functions).
        Each gets a context dict holding ``VantiqConnector.SOURCE_NAME`` (and, for queries,
        ``VantiqConnector.RESPONSE_ADDRESS``); connect, publish and query handlers also get
        the configuration, message or query parameters."""
        self.close_handler = handle_close
        self.connect_handler = handle_connect
        self.publish_handler = handle_publish
        self.query_handler = handle_query

    # Running ---------------------------------------------------------------------------

    async def connect_to_vantiq(self) -> None:
        """Connects this source alone and serves it until closed (reconnecting after any
        loss). Prefer ``VantiqConnectorSet.run_connectors``."""
        await self._set._run(self)

    async def close(self) -> None:
        """Closes the connection for good (pending notifications are sent first, for up
        to the ``close_timeout`` setting)."""
        await self._set._close(self._index)

    # Sending ---------------------------------------------------------------------------

    async def send_notification(self, message: dict) -> None:
        """Sends a notification (an event of the source). It is queued at once when there
        is room (and sent again after a reconnection if the server did not acknowledge
        it); the call waits only when the buffer is full."""
        native = self._set._running_native()
        if native is None:
            native = await self._set._wait_started()
        if native.try_notify(self._index, message):
            return
        bridge = self._set._loop_bridge
        await bridge.call(lambda token: native.notify(bridge.native, token, self._index, message))

    async def flush(self) -> None:
        """Waits until every notification sent so far is acknowledged by the server (or
        dropped by the overflow policy). Before the connectors run nothing can be pending."""
        native = self._set._running_native()
        if native is None:
            return
        bridge = self._set._loop_bridge
        await bridge.call(lambda token: native.flush(bridge.native, token, self._index))

    def stats(self) -> dict:
        """The core's counters for this source (sent, acknowledged, resent, dropped,
        buffered, connections, reconnections, queries_answered, queries_failed, ...)."""
        return self._set._native.stats(self._index)

    def _query(self, ctx: Optional[dict], what: str) -> Any:
        if type(ctx) is QueryContext and ctx.get(VantiqConnector.SOURCE_NAME) == self.source_name:
            return ctx._handle
        if (ctx is None
                or VantiqConnector.SOURCE_NAME not in ctx
                or ctx[VantiqConnector.SOURCE_NAME] != self.source_name
                or ctx.get(VantiqConnector.RESPONSE_ADDRESS) is None):
            raise VantiqConnectorException(f"{what}: missing or incomplete context: {ctx}.")
        # A plain dict copy: the core keeps the open queries by reply address.
        handle = self._set._native.find_query(self._index, ctx[VantiqConnector.RESPONSE_ADDRESS])
        if handle is None:
            raise VantiqConnectorException(
                f"{what}: no open query with this context (it was answered, or every "
                f"reference to its context was dropped): {ctx}.")
        return handle

    async def send_query_response(self, ctx: dict, code: int, message: Union[dict, list, None]) -> None:
        """Answers a query: ``QUERY_PARTIAL`` (more follows) or ``QUERY_COMPLETE`` with a
        dict or a list of dicts, or ``QUERY_EMPTY`` without one."""
        if code not in _QUERY_CODES:
            raise VantiqConnectorException(f"send_query_response(): Invalid Code: {code}.")
        if code != VantiqConnector.QUERY_EMPTY and message is None:
            raise VantiqConnectorException("send_query_response(): Non-empty responses require a message parameter.")
        handle = self._query(ctx, "send_query_response()")
        body = None if code == VantiqConnector.QUERY_EMPTY else message
        if handle.respond(code, body):
            # Queued: the connection task writes it now. (Waking it once per loop turn
            # instead was slower in the benchmark's query figure: the server waits.)
            self._set._native.wake_writer(self._index)
        else:
            # The answer budget is full (the server reads slowly): wait for room.
            bridge = self._set._loop_bridge
            await bridge.call(lambda token: handle.respond_later(bridge.native, token, code, body))

    async def send_query_error(self, ctx: dict, message: dict) -> None:
        """Answers a query with an error: ``message`` holds ``ERROR_CODE``,
        ``ERROR_TEMPLATE`` (with ``{0}``-style placeholders) and ``ERROR_PARAMETERS``."""
        handle = self._query(ctx, "send_query_error()")
        try:
            code = message[VantiqConnector.ERROR_CODE]
            template = message[VantiqConnector.ERROR_TEMPLATE]
            params = message[VantiqConnector.ERROR_PARAMETERS]
        except (KeyError, TypeError):
            code = template = params = None
        if code is None or template is None or params is None:
            raise VantiqConnectorException(
                f"send_query_error(): Missing or incomplete error message information: {message}")
        if not handle.error(str(code), str(template), params):
            bridge = self._set._loop_bridge
            await bridge.call(lambda token: handle.error_later(bridge.native, token, str(code), str(template), params))

    # Dispatch --------------------------------------------------------------------------

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """The dispatcher: handles this source's events in order until ``STOP``."""
        inbox = self._inbox
        name = self.source_name
        while True:
            item = inbox.items.popleft() if inbox.items else await inbox.get(loop)
            kind = item[0]
            try:
                if kind == "p":
                    handler = self.publish_handler
                    if handler is None:
                        _log.error("No handler found for operation publish (source %s)", name)
                    else:
                        await handler({VantiqConnector.SOURCE_NAME: name}, item[3])
                elif kind == "q":
                    handler = self.query_handler
                    ctx = self._query_context(item)
                    params = item[5]
                    # Only the context holds the query's handle from here on.
                    item = None
                    if ctx is not None:
                        try:
                            await handler(ctx, params)
                        except asyncio.CancelledError:
                            raise
                        except Exception as e:
                            self._query_failed(ctx, e)
                        # If nothing else holds the context now, an unanswered query
                        # gets its error answer from the core at once.
                        ctx = params = None
                elif kind == "c":
                    if self.connect_handler is not None:
                        await self.connect_handler({VantiqConnector.SOURCE_NAME: name}, item[3])
                elif kind == "x":
                    if self.close_handler is not None:
                        await self.close_handler({VantiqConnector.SOURCE_NAME: name})
                else:  # STOP
                    return
                item = None
            except asyncio.CancelledError:
                raise
            except Exception as e:
                op = {"p": "publish", "c": "connect", "x": "close"}.get(kind, kind)
                _log.error("Exception %s thrown by %s handler of source %s: %s\n%s",
                           type(e).__name__, op, name, e, traceback.format_exc())

    def _query_context(self, item: tuple) -> Optional[QueryContext]:
        """The context of a query event (``None``, answered with an error, when the
        source has no query handler)."""
        handle, reply = item[3], item[4]
        if self.query_handler is None:
            handle.error("io.vantiq.connector.noQueryHandler", "Source {0} has no query handler.",
                         [self.source_name])
            return None
        ctx = QueryContext({VantiqConnector.SOURCE_NAME: self.source_name, VantiqConnector.RESPONSE_ADDRESS: reply})
        ctx._handle = handle
        return ctx

    def _query_failed(self, ctx: QueryContext, e: Exception) -> None:
        """A query handler raised: logged, and the query answered with the error."""
        _log.error("Exception %s thrown by query handler of source %s: %s\n%s",
                   type(e).__name__, self.source_name, e, traceback.format_exc())
        handle = ctx._handle
        if not handle.finished():
            try:
                handle.error("io.vantiq.connector.queryHandlerFailed", "The query handler failed: {0}",
                             [f"{type(e).__name__}: {e}"])
            except Exception:  # answered meanwhile, or the connection ended
                pass
