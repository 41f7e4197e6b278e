"""The TCP health probe: a custom port, the default 8000, and the connection-level calls."""

import asyncio
import contextlib
import socket

import pytest
from conftest import free_port, probe

from vantiq_connector_sdk import VantiqConnector, VantiqConnectorSet


def config(workdir, extra=""):
    (workdir / "server.config").write_text(
        f"targetServer=http://localhost:{free_port()}\nauthToken=t\nsources=s\n{extra}")
    return VantiqConnectorSet()


async def test_health_on_a_custom_port(workdir):
    port = free_port()
    vc = config(workdir, f"{VantiqConnector.PORT_PROPERTY_NAME} = {port}\n")
    assert vc.is_healthy() is None
    assert not await probe(port)
    await vc.declare_healthy()
    assert vc.is_healthy() is True
    assert await probe(port)
    assert await probe(port)
    await vc.declare_unhealthy()
    assert vc.is_healthy() is False
    assert not await probe(port)
    await vc.declare_healthy()
    assert await probe(port)
    await vc.close()
    assert not await probe(port)


async def test_health_through_a_source_connection(workdir):
    port = free_port()
    vc = config(workdir, f"tcpProbePort={port}\n")
    conn = vc.get_connection_for_source("s")
    assert conn.is_healthy() is None
    await conn.declare_healthy()
    assert conn.is_healthy() is True and vc.is_healthy() is True
    assert await probe(port)
    await conn.declare_unhealthy()
    assert conn.is_healthy() is False
    assert not await probe(port)


def port_8000_is_free() -> bool:
    with socket.socket() as s, contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", VantiqConnector.TCP_PROBE_PORT_DEFAULT))
        return True
    return False


async def test_health_on_the_default_port_8000(workdir):
    assert port_8000_is_free(), "this test needs port 8000 (the official default probe port) free"
    vc = config(workdir)
    assert not await probe(VantiqConnector.TCP_PROBE_PORT_DEFAULT)
    await vc.declare_healthy()
    assert vc.health_probe_port() == 8000
    assert await probe(VantiqConnector.TCP_PROBE_PORT_DEFAULT)
    await vc.declare_unhealthy()
    assert not await probe(VantiqConnector.TCP_PROBE_PORT_DEFAULT)


async def test_a_busy_probe_port_raises_os_error(workdir):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        vc = config(workdir, f"tcpProbePort={busy.getsockname()[1]}\n")
        with pytest.raises(OSError):
            await vc.declare_healthy()
        assert vc.is_healthy() is None


async def test_metrics_and_http_probes_with_metrics_port(workdir):
    """``metricsPort`` in server.config: Prometheus /metrics and /healthz, /readyz."""
    import urllib.request

    from conftest import connector

    from vantiq_connector_sdk.testing import Emulator

    port = free_port()
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir, metricsPort=port):
            await sim.wait_connected("s1")
            await sim.publish("s1", {"x": 1})
            await sim.wait_notifications("s1", 1)

            def get(path):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                    return r.status, r.read().decode()

            loop = asyncio.get_running_loop()
            status, text = await loop.run_in_executor(None, get, "/metrics")
            assert status == 200
            assert 'source="s1"' in text and "vantiq_connector_notifications" in text, text[:2000]
            assert (await loop.run_in_executor(None, get, "/healthz"))[0] == 200
            assert (await loop.run_in_executor(None, get, "/readyz"))[0] == 200
