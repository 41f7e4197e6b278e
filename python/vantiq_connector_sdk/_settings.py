"""``Settings``: the Rust core's settings that server.config does not hold (an extension
of the official API). Durations are in seconds; ``None`` keeps the core's default."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Optional

__all__ = ["Settings", "QUERY_DEADLINE"]

#: The default ``Settings.query_deadline``, in seconds: longer than a VAIL ``SELECT``
#: usually waits for a source, so a query answered late by a task of the connector is
#: still answered, and short enough that a forgotten one is answered (with an error)
#: while someone still looks.
QUERY_DEADLINE = 120.0


@dataclass
class Settings:
    """Tuning of the core, given to ``VantiqConnectorSet(settings=...)``.

    - ``initial_backoff``, ``max_backoff``: reconnection delays (with jitter).
    - ``max_reconnect_attempts``: give up after this many failures in a row (never, by default).
    - ``connect_timeout``: one connection attempt, TCP to configuration.
    - ``ping_interval``: WebSocket pings when ``sendPings=true``.
    - ``buffer_capacity``: notifications kept while disconnected or while the server is slow.
    - ``overflow``: when that buffer is full: ``"wait"`` (the default), ``"drop_oldest"``, ``"fail"``.
    - ``window``: notifications sent and not yet acknowledged, at most.
    - ``ack_timeout``: how long notifications may wait for their acknowledgement.
    - ``max_message_size``: the largest server message accepted, in bytes.
    - ``query_deadline``: a query without its final answer this long after it arrived
      gets an error answer from the SDK (default ``QUERY_DEADLINE``, 120 s; ``None``: no
      deadline, the query waits as long as anything holds its context).
    - ``close_timeout``: how long closing waits for pending notifications to go out.
    """

    initial_backoff: Optional[float] = None
    max_backoff: Optional[float] = None
    max_reconnect_attempts: Optional[int] = None
    connect_timeout: Optional[float] = None
    ping_interval: Optional[float] = None
    buffer_capacity: Optional[int] = None
    overflow: Optional[Literal["wait", "drop_oldest", "fail"]] = None
    window: Optional[int] = None
    ack_timeout: Optional[float] = None
    max_message_size: Optional[int] = None
    query_deadline: Optional[float] = QUERY_DEADLINE
    close_timeout: Optional[float] = None

    def to_dict(self) -> dict:
        """The settings that are set, for the core."""
        return {k: v for k, v in asdict(self).items() if v is not None}
