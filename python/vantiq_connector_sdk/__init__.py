"""The Vantiq connector SDK for Python on a Rust core.

The API of the official ``vantiqconnectorsdk`` 1.3.7: replace
``from vantiqconnectorsdk import ...`` with ``from vantiq_connector_sdk import ...``.
The WebSocket, TLS, JSON and protocol work runs in Rust threads; handlers are
``async def`` functions run on your asyncio event loop. See the README for what differs
from the official SDK (it does what the official one documents where that one does not).
"""

from ._connection import VantiqSourceConnection
from ._constants import VantiqConnector
from ._errors import (
    AuthenticationError,
    BufferFullError,
    ConnectError,
    ConnectionClosedError,
    NotificationError,
    QueryAnswerError,
    VantiqConnectorConfigException,
    VantiqConnectorException,
)
from ._logging import refresh_log_level, setup_logging
from ._native import sanitize_url
from ._set import VantiqConnectorSet
from ._settings import Settings

__all__ = [
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
    "NotificationError",
    "BufferFullError",
    "ConnectionClosedError",
    "QueryAnswerError",
    "refresh_log_level",
]
