"""The Vantiq connector SDK for Python on a Rust core.

The API of the official ``vantiqconnectorsdk`` 1.3.7: replace
``from vantiqconnectorsdk import ...`` with ``from vantiq_connector_sdk import ...``.
The WebSocket, TLS, JSON and protocol work runs in Rust threads; handlers are
``async def`` functions run on your asyncio event loop. See the README for what differs
from the official SDK (it does what the official one documents where that one does not).
"""

from ._connection import QueryContext, VantiqSourceConnection
from ._constants import MODULE_CONSTANTS as _MODULE_CONSTANTS
from ._constants import VantiqConnector
from ._errors import (
    AuthenticationError,
    BufferFullError,
    ConnectError,
    ConnectionClosedError,
    NameResolutionError,
    NotificationError,
    QueryAnswerError,
    VantiqConnectorConfigException,
    VantiqConnectorException,
)
from ._logging import refresh_log_level, setup_logging
from ._native import __version__, sanitize_url
from ._set import VantiqConnectorSet
from ._settings import Settings

# The official module's underscore constants (``_OP_PUBLISH``, ``_TEST_CLOSE``,
# ``_WEBSOCKET_URL_PATTERN``, ...), same values, and its logger after ``setup_logging()``.
globals().update(_MODULE_CONSTANTS)
_vlog = None

__all__ = [
    "__version__",
    "QueryContext",
    "VantiqSourceConnection",
    "VantiqConnector",
    "VantiqConnectorSet",
    "VantiqConnectorConfigException",
    "VantiqConnectorException",
    "setup_logging",
    "sanitize_url",
    "Settings",
    "AuthenticationError",
    "ConnectError",
    "NameResolutionError",
    "NotificationError",
    "BufferFullError",
    "ConnectionClosedError",
    "QueryAnswerError",
    "refresh_log_level",
]
