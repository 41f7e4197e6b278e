"""The package's exceptions: the official SDK's two, and subclasses for what the Rust core
can tell apart (so ``except VantiqConnectorException`` still catches them all)."""

import errno
import socket
from typing import Optional

__all__ = [
    "VantiqConnectorException",
    "VantiqConnectorConfigException",
    "AuthenticationError",
    "ConnectError",
    "NameResolutionError",
    "NotificationError",
    "BufferFullError",
    "ConnectionClosedError",
    "QueryAnswerError",
    "EmulatorError",
    "EmulatorTimeout",
]


class VantiqConnectorException(RuntimeError):
    """Something went wrong in the connector SDK (as in ``vantiqconnectorsdk``)."""


class VantiqConnectorConfigException(VantiqConnectorException):
    """The configuration (server.config, or the credentials it names) is unusable."""


class AuthenticationError(VantiqConnectorConfigException):
    """The server rejected the credentials; never retried."""


class ConnectError(VantiqConnectorException, OSError):
    """A connection could not be made and ``failOnConnectionError=true`` (or the
    ``max_reconnect_attempts`` setting) says not to retry. Also an ``OSError``, which is
    what the official SDK raises then, with the same ``args``: ``(errno, message)``
    (``errno`` is ``None`` where no system error number fits, a TLS failure say)."""

    def __init__(self, code: Optional[int], message: str) -> None:
        super().__init__(code, message)
        self.errno = code
        self.strerror = message

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.strerror}" if self.errno is not None else str(self.strerror)


class NameResolutionError(ConnectError, socket.gaierror):
    """The server's host name could not be resolved: also a ``socket.gaierror``, as the
    official SDK raises, with ``(errno, message)`` as its ``args``."""


def connect_error(kind: str, message: str) -> ConnectError:
    """The exception of a failed connection of ``kind`` (``"dns"``, ``"refused"``,
    ``"timeout"``, another word for the rest), made by the core."""
    if kind == "dns":
        return NameResolutionError(socket.EAI_NONAME, message)
    code = {"refused": errno.ECONNREFUSED, "timeout": errno.ETIMEDOUT}.get(kind)
    return ConnectError(code, message)


class NotificationError(VantiqConnectorException):
    """A notification was refused (it is not a JSON object, say)."""


class BufferFullError(NotificationError):
    """The notification buffer is full and the overflow policy is ``"fail"``."""


class ConnectionClosedError(NotificationError):
    """The source connection was closed for good."""


class QueryAnswerError(VantiqConnectorException):
    """A query answer was refused: bad code or body, a second final answer, a query of
    another source, or a connection that has ended. Nothing was sent."""


class EmulatorError(Exception):
    """An emulator operation of ``vantiq_connector_sdk.testing`` failed (unknown source,
    no connected connector, connection lost before the answer, ...)."""


class EmulatorTimeout(EmulatorError):
    """An emulator wait or query did not complete in time."""
