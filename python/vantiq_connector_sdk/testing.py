"""An in-process Vantiq server emulator (vantiq-sim) for testing connectors with pytest.

It speaks the protocol of a Vantiq server on loopback, lets a test publish, query,
force reconnections and drops, change a source's configuration, and records every
notification and every protocol violation the connector commits::

    from vantiq_connector_sdk.testing import Emulator

    async def test_echo(tmp_path, monkeypatch):
        async with Emulator(sources={"s1": {}}) as sim:
            sim.write_server_config(tmp_path)
            monkeypatch.chdir(tmp_path)
            ...  # start the connector (VantiqConnectorSet().run_connectors()) in a task
            await sim.wait_connected("s1")
            await sim.publish("s1", {"x": 1})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"x": 1}

Awaiting methods run on the emulator's Rust threads, so a connector on the same event
loop keeps running meanwhile. Timeouts are in seconds.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import _bridge, _native
from ._errors import EmulatorError, EmulatorTimeout

__all__ = ["Emulator", "EmulatorError", "EmulatorTimeout", "DEFAULT_TOKEN", "DEFAULT_TIMEOUT"]

#: The token an ``Emulator`` accepts when none is given.
DEFAULT_TOKEN = "test-token"
#: Timeout of the waits, in seconds, when none is given.
DEFAULT_TIMEOUT = 10.0


class Emulator:
    """A running emulator. ``sources`` maps each source name to its configuration
    document; ``token`` (or ``tokens``) and ``users`` (``(name, password)`` pairs) are
    the credentials accepted; ``acks=False`` makes it a server that never acknowledges
    notifications; ``port`` 0 picks a free port."""

    def __init__(self, *, sources: Optional[Dict[str, Any]] = None, token: Optional[str] = DEFAULT_TOKEN,
                 tokens: Iterable[str] = (), users: Iterable[Tuple[str, str]] = (), acks: bool = True,
                 host: str = "127.0.0.1", port: int = 0, keep_notifications: Optional[int] = None) -> None:
        all_tokens = ([token] if token else []) + list(tokens)
        self.token = token
        self._native = _native.NativeSim(all_tokens, list(users), dict(sources or {}), acks,
                                         f"{host}:{port}", keep_notifications)

    async def __aenter__(self) -> "Emulator":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops the emulator for good and releases its port."""
        self._native.close()

    # Addresses and configuration ---------------------------------------------------------

    @property
    def http_url(self) -> str:
        """The server URL, as server.config's ``targetServer`` says it."""
        return self._native.http_url()

    @property
    def ws_url(self) -> str:
        """The WebSocket URL connectors dial."""
        return self._native.ws_url()

    def server_config(self, sources: Optional[Iterable[str]] = None, **properties: Any) -> str:
        """The text of a server.config for this emulator: ``targetServer``, ``authToken``
        (the emulator's token), ``sources`` (all of them, unless given), then
        ``properties`` (``sendPings=True``, ``tcpProbePort=0``...; ``authToken=None``
        leaves the token out)."""
        names = list(sources) if sources is not None else [s["name"] for s in self.sources()]
        props: Dict[str, Any] = {"targetServer": self.http_url, "authToken": self.token,
                                 "sources": ", ".join(names)}
        props.update(properties)
        lines = []
        for key, value in props.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"

    def write_server_config(self, directory: Union[str, os.PathLike], sources: Optional[Iterable[str]] = None,
                            **properties: Any) -> Path:
        """Writes ``directory/serverConfig/server.config`` (see ``server_config``) and
        returns its path."""
        path = Path(directory) / "serverConfig" / "server.config"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.server_config(sources, **properties), encoding="utf-8")
        return path

    def add_source(self, name: str, config: Any = None) -> None:
        """Adds a source (or replaces its configuration without telling the connector)."""
        self._native.add_source(name, {} if config is None else config)

    def remove_source(self, name: str) -> None:
        """Removes a source: its connection is cut and connecting it fails."""
        self._native.remove_source(name)

    def set_acks(self, on: bool) -> None:
        """Switches notification acknowledgements on or off."""
        self._native.set_acks(on)

    # State --------------------------------------------------------------------------------

    def notifications(self, source: str, since: int = 0) -> List[dict]:
        """The source's notifications with ``seq >= since``: ``{"seq", "object"}`` dicts."""
        return self._native.notifications(source, since)

    def source_status(self, source: str) -> Optional[dict]:
        """``{"name", "connected", "connections", "config", "reconnect_secrets"}``, or
        ``None`` for an unknown source."""
        return self._native.source_status(source)

    def sources(self) -> List[dict]:
        """Every source's status, by name."""
        return self._native.sources()

    def violations(self) -> List[dict]:
        """Every protocol violation so far: ``{"source", "kind", "detail"}`` dicts."""
        return self._native.violations()

    def clear_violations(self) -> None:
        """Forgets the violations recorded so far."""
        self._native.clear_violations()

    def auth_failures(self) -> int:
        """How many authentications were rejected."""
        return self._native.auth_failures()

    # Actions and waits ----------------------------------------------------------------------

    async def _call(self, method: str, *args: Any) -> Any:
        bridge = _bridge.for_loop(asyncio.get_running_loop())
        fn = getattr(self._native, method)
        return await bridge.call(lambda token: fn(bridge.native, token, *args))

    async def publish(self, source: str, message: Any) -> None:
        """Publishes ``message`` to the source's connector."""
        await self._call("publish", source, message)

    async def publish_many(self, source: str, messages: Iterable[Any]) -> int:
        """Publishes each message in order; returns how many were sent."""
        return await self._call("publish_many", source, list(messages))

    async def query(self, source: str, params: Any = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Queries the source and waits for the final answer: ``{"status", "rows",
        "frames", "error"}`` (an error answer is a result, not an exception)."""
        return await self._call("query", source, {} if params is None else params, timeout)

    async def set_config(self, source: str, config: Any) -> None:
        """Stores a new configuration and sends ``reconnectRequired``."""
        await self._call("set_config", source, config)

    async def reconnect(self, source: str) -> None:
        """Sends ``reconnectRequired``."""
        await self._call("reconnect", source)

    async def drop_connection(self, source: str) -> None:
        """Cuts the source's connection without a close frame."""
        await self._call("drop_connection", source)

    async def stop_reading(self, source: str) -> None:
        """Stops reading the source's connection (kept open, the server still writes):
        what the connector sends piles up in the network's buffers, then in its own."""
        await self._call("stop_reading", source)

    async def resume_reading(self, source: str) -> None:
        """Reads the source's connection again after ``stop_reading``."""
        await self._call("resume_reading", source)

    async def go_silent(self, source: str) -> None:
        """Makes the source's link half-open (nothing read, nothing sent)."""
        await self._call("go_silent", source)

    async def send_raw(self, source: str, frame: Union[str, bytes]) -> None:
        """Sends a text (``str``) or binary (``bytes``) frame as is."""
        await self._call("send_raw", source, frame)

    async def stop(self) -> None:
        """Stops as a crashed server would (every connection cut); ``restart`` resumes."""
        await self._call("stop")

    async def restart(self) -> None:
        """Listens again on the same address after ``stop``."""
        await self._call("restart")

    async def wait_connected(self, source: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Waits until the source is connected; returns its status."""
        return await self._call("wait_connected", source, timeout)

    async def wait_connections(self, source: str, n: int, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Waits until the source is connected and has made at least ``n`` handshakes."""
        return await self._call("wait_connections", source, n, timeout)

    async def wait_disconnected(self, source: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Waits until the source is not connected."""
        return await self._call("wait_disconnected", source, timeout)

    async def wait_notifications(self, source: str, count: int, timeout: float = DEFAULT_TIMEOUT) -> List[dict]:
        """Waits until the source has sent ``count`` notifications; returns them all."""
        return await self._call("wait_notifications", source, count, timeout)

    async def wait_violations(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> List[dict]:
        """Waits until ``n`` violations are recorded; returns them all."""
        return await self._call("wait_violations", n, timeout)
