"""The core's settings, reachable from Python: buffer and overflow policy, query deadline."""

import asyncio

import pytest
from conftest import connector

from vantiq_connector_sdk import BufferFullError, Settings, VantiqConnector, VantiqConnectorSet
from vantiq_connector_sdk.testing import Emulator


async def test_overflow_fail_raises_when_the_buffer_is_full(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        sim.write_server_config(workdir)
        vc = VantiqConnectorSet(settings=Settings(buffer_capacity=5, overflow="fail"))
        vc.configure_handlers_for_all(None, None, None, None)
        await sim.stop()  # nothing can be delivered
        task = asyncio.get_running_loop().create_task(vc.run_connectors())
        conn = vc.get_connection_for_source("s1")
        for i in range(5):
            await conn.send_notification({"i": i})
        with pytest.raises(BufferFullError):
            await conn.send_notification({"i": 5})
        await sim.restart()
        await sim.wait_connected("s1")
        got = await sim.wait_notifications("s1", 5)
        assert [n["object"] for n in got] == [{"i": i} for i in range(5)]
        await vc.close()
        await task


async def test_overflow_drop_oldest_counts_what_it_drops(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        sim.write_server_config(workdir)
        vc = VantiqConnectorSet(settings=Settings(buffer_capacity=3, overflow="drop_oldest"))
        await sim.stop()
        task = asyncio.get_running_loop().create_task(vc.run_connectors())
        conn = vc.get_connection_for_source("s1")
        for i in range(10):
            await conn.send_notification({"i": i})
        assert conn.stats()["dropped"] == 7
        await sim.restart()
        got = await sim.wait_notifications("s1", 3)
        assert [n["object"] for n in got] == [{"i": 7}, {"i": 8}, {"i": 9}]
        await vc.close()
        await task


async def test_a_query_past_its_deadline_gets_an_error_answer(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir, settings=Settings(query_deadline=0.2)) as rec:
            async def slow(ctx, params):
                await asyncio.sleep(1)
                await rec.conn(ctx).send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"late": True})
            rec.answer = slow
            await sim.wait_connected("s1")
            result = await sim.query("s1", {}, timeout=5)
            assert result["status"] >= 400 and result["rows"] == []
            assert sim.violations() == []


def test_bad_settings_are_refused(workdir):
    (workdir / "server.config").write_text("targetServer=http://x:1\nauthToken=t\nsources=s\n")
    with pytest.raises(ValueError):
        VantiqConnectorSet(settings=Settings(overflow="sometimes"))
    with pytest.raises(ValueError):
        VantiqConnectorSet(settings=Settings(max_backoff=-1))
