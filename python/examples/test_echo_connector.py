"""The echo connector's tests, written as a connector author would: the package's pytest
plugin gives the ``vantiq_sim`` emulator (server.config written into the test's working
directory), pytest-asyncio runs the coroutines."""

import asyncio

import pytest
from echo_connector import EchoConnector

from vantiq_connector_sdk import VantiqConnectorSet


@pytest.mark.asyncio
@pytest.mark.vantiq_sources({"orders": {"table": "orders"}})
async def test_publishes_come_back_and_queries_are_answered(vantiq_sim):
    connectors = VantiqConnectorSet()
    echo = EchoConnector(connectors)
    task = asyncio.create_task(connectors.run_connectors())
    await vantiq_sim.wait_connected("orders")

    await vantiq_sim.publish("orders", {"id": 1, "amount": 12345678901234567890})
    notes = await vantiq_sim.wait_notifications("orders", 1)
    assert notes[0]["object"] == {"id": 1, "amount": 12345678901234567890}
    # Handlers run in the order of the events: the connect handler ran before the publish's.
    assert echo.configs == {"orders": {"table": "orders"}}

    result = await vantiq_sim.query("orders", {"count": 3})
    assert result["status"] == 200 and result["rows"] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert (await vantiq_sim.query("orders", {"count": 0}))["status"] == 204

    await connectors.close()
    await task


@pytest.mark.asyncio
@pytest.mark.vantiq_sources(["a", "b"])
async def test_every_source_is_served(vantiq_sim):
    connectors = VantiqConnectorSet()
    EchoConnector(connectors)
    task = asyncio.create_task(connectors.run_connectors())
    for name in ("a", "b"):
        await vantiq_sim.wait_connected(name)
        await vantiq_sim.publish(name, {"to": name})
        assert (await vantiq_sim.wait_notifications(name, 1))[0]["object"] == {"to": name}
    await connectors.close()
    await task
