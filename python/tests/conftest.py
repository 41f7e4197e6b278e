"""Shared helpers of the package's tests: every test runs against the in-process
emulator (vantiq_connector_sdk.testing), in a fresh working directory.

``async def`` tests are run with ``asyncio.run`` (under a timeout) by the hook below,
so no asyncio plugin is needed.
"""

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import socket
from typing import Any, Dict, List, Optional

import pytest

import vantiq_connector_sdk
from vantiq_connector_sdk import VantiqConnector, VantiqConnectorSet
from vantiq_connector_sdk.testing import Emulator

if os.environ.get("VANTIQ_EXPECT_INSTALLED") == "1":
    # CI runs this suite against the installed wheel, on a PATH without a Rust toolchain.
    assert "site-packages" in vantiq_connector_sdk.__file__, vantiq_connector_sdk.__file__
    assert shutil.which("cargo") is None and shutil.which("rustc") is None, "a Rust toolchain is on PATH"

#: Longest an async test may run, in seconds.
TEST_TIMEOUT = 60


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), TEST_TIMEOUT))
        return True
    return None


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working directory (server.config is read from the working directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONNECTOR_AUTH_TOKEN", raising=False)
    return tmp_path


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def probe(port: int) -> bool:
    """Whether a TCP connection to the health probe at ``port`` is accepted."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_for(predicate, timeout: float = 30.0) -> None:
    """Waits until ``predicate()`` holds: for a state that no awaitable announces (a
    handler's record, a reconnection seen by a mock server), polled."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


class Recorder:
    """Handlers that record every call, and echo: publishes come back as notifications;
    queries are answered by ``answer`` (by default: the params as the only row)."""

    def __init__(self, connectors: VantiqConnectorSet) -> None:
        self.connectors = connectors
        self.connects: List[tuple] = []
        self.closes: List[str] = []
        self.publishes: List[tuple] = []
        self.queries: List[tuple] = []
        self.echo = True
        self.connected = asyncio.Event()

    def conn(self, ctx: Dict[str, Any]):
        return self.connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])

    async def on_connect(self, ctx, config):
        self.connects.append((ctx[VantiqConnector.SOURCE_NAME], config))
        self.connected.set()

    async def on_close(self, ctx):
        self.closes.append(ctx[VantiqConnector.SOURCE_NAME])

    async def on_publish(self, ctx, message):
        self.publishes.append((ctx[VantiqConnector.SOURCE_NAME], message))
        if self.echo:
            await self.conn(ctx).send_notification(message)

    async def on_query(self, ctx, params):
        self.queries.append((dict(ctx), params))
        await self.answer(ctx, params)

    async def answer(self, ctx, params):
        await self.conn(ctx).send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, params)

    def install(self) -> "Recorder":
        self.connectors.configure_handlers_for_all(self.on_close, self.on_connect, self.on_publish, self.on_query)
        return self


@contextlib.asynccontextmanager
async def running(connectors: VantiqConnectorSet):
    """Runs the connectors in a task; on exit closes them and checks the run ended
    cleanly."""
    task = asyncio.get_running_loop().create_task(connectors.run_connectors())
    try:
        yield task
    finally:
        if not task.done():
            await connectors.close()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def connector(sim: Emulator, workdir, sources: Optional[List[str]] = None, settings=None, **properties):
    """server.config for ``sim`` in ``workdir``, a connector set with a ``Recorder``,
    running until the block ends."""
    sim.write_server_config(workdir, sources, **properties)
    connectors = VantiqConnectorSet(settings=settings)
    rec = Recorder(connectors).install()
    async with running(connectors) as task:
        rec.task = task
        yield rec


class Records(logging.Handler):
    """A logging handler keeping every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> List[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]
