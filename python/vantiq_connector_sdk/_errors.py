"""The package's exceptions: the official SDK's two, and subclasses for what the Rust core
can tell apart (so ``except VantiqConnectorException`` still catches them all)."""

__all__ = [
    "VantiqConnectorException",
    "VantiqConnectorConfigException",
    "AuthenticationError",
    "ConnectError",
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
    what the official SDK raises then."""


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
