"""Publishes, notifications and queries through the emulator."""

import asyncio

import pytest
from conftest import connector

from vantiq_connector_sdk import (
    NotificationError,
    QueryAnswerError,
    VantiqConnector,
    VantiqConnectorException,
)
from vantiq_connector_sdk.testing import Emulator


async def test_publishes_come_back_in_order(workdir):
    async with Emulator(sources={"s1": {"someProp": "message content"}}) as sim:
        async with connector(sim, workdir) as rec:
            await sim.wait_connected("s1")
            await rec.connected.wait()
            assert rec.connects == [("s1", {"someProp": "message content"})]
            messages = [{"i": i, "text": "é", "nested": {"l": [1, 2.5, None, True]}} for i in range(500)]
            assert await sim.publish_many("s1", messages) == 500
            got = await sim.wait_notifications("s1", 500)
            assert [n["object"] for n in got] == messages
            assert [n["seq"] for n in got] == list(range(500))
            assert [m for _, m in rec.publishes] == messages
        assert rec.closes == ["s1"]
        assert sim.violations() == []


async def test_numbers_pass_through_exactly(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir):
            await sim.wait_connected("s1")
            message = {"big": 123456789012345678901234567890, "neg": -9223372036854775809,
                       "f": 0.1, "e": 1e300, "u": 18446744073709551615}
            await sim.publish("s1", message)
            (got,) = await sim.wait_notifications("s1", 1)
            assert got["object"] == message
            assert type(got["object"]["big"]) is int


async def test_notifications_from_a_query_handler(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def answer(ctx, params):
                conn = rec.conn(ctx)
                for i in range(params["count"]):
                    await conn.send_notification({"seq": i})
                await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"sent": params["count"]})
            rec.answer = answer
            await sim.wait_connected("s1")
            result = await sim.query("s1", {"count": 2000})
            assert result["status"] == 200 and result["rows"] == [{"sent": 2000}]
            got = await sim.wait_notifications("s1", 2000)
            assert [n["object"] for n in got] == [{"seq": i} for i in range(2000)]
            await rec.connectors.flush()
            stats = rec.connectors.stats()["s1"]
            assert stats["acknowledged"] == 2000 and stats["buffered"] == 0


async def test_query_answers_partial_complete_empty_and_error(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def answer(ctx, params):
                conn = rec.conn(ctx)
                assert ctx[VantiqConnector.SOURCE_NAME] == "s1" and ctx[VantiqConnector.RESPONSE_ADDRESS]
                op = params["op"]
                if op == "rows":
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, [{"i": 0}, {"i": 1}])
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, {"i": 2})
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, [{"i": 3}])
                elif op == "empty":
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_EMPTY, None)
                elif op == "error":
                    await conn.send_query_error(ctx, {VantiqConnector.ERROR_CODE: "my.code",
                                                      VantiqConnector.ERROR_TEMPLATE: "Bad {0} and {1}",
                                                      VantiqConnector.ERROR_PARAMETERS: ["x", 2]})
            rec.answer = answer
            await sim.wait_connected("s1")
            rows = await sim.query("s1", {"op": "rows"})
            assert rows["status"] == 200
            assert rows["rows"] == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]
            assert [f["status"] for f in rows["frames"]] == [100, 100, 200]
            empty = await sim.query("s1", {"op": "empty"})
            assert (empty["status"], empty["rows"]) == (204, [])
            error = await sim.query("s1", {"op": "error"})
            assert error["status"] >= 400
            assert error["error"]["messageCode"] == "my.code"
            assert error["error"]["parameters"] == ["x", 2]
            assert sim.violations() == []


async def test_raising_and_silent_query_handlers_get_error_answers(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def answer(ctx, params):
                if params["op"] == "raise":
                    raise ValueError("no such table")
                if params["op"] == "partial-then-raise":
                    await rec.conn(ctx).send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, {"i": 0})
                    raise KeyError("later")
                # "silent": returns without answering
            rec.answer = answer
            await sim.wait_connected("s1")
            raised = await sim.query("s1", {"op": "raise"})
            assert raised["status"] >= 400
            assert raised["error"]["messageCode"] == "io.vantiq.connector.queryHandlerFailed"
            assert "no such table" in str(raised["error"]["parameters"])
            partial = await sim.query("s1", {"op": "partial-then-raise"})
            assert partial["status"] >= 400 and partial["rows"] == [{"i": 0}]
            silent = await sim.query("s1", {"op": "silent"})
            assert silent["status"] >= 400
            assert silent["error"]["messageCode"].startswith("io.vantiq.connector.")
            # The connection is still fine.
            await sim.publish("s1", {"after": 1})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"after": 1}
            assert sim.violations() == []


async def test_no_query_handler_answers_with_an_error(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            rec.connectors.get_connection_for_source("s1").query_handler = None
            await sim.wait_connected("s1")
            result = await sim.query("s1", {})
            assert result["error"]["messageCode"] == "io.vantiq.connector.noQueryHandler"


async def test_bad_answers_are_refused_and_nothing_is_sent(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            refused = []

            async def answer(ctx, params):
                conn = rec.conn(ctx)
                for code, body in [(201, {}), (200, None), (100, None), (200, [1, 2]), (200, "text")]:
                    with pytest.raises(VantiqConnectorException) as e:
                        await conn.send_query_response(ctx, code, body)
                    refused.append(type(e.value))
                with pytest.raises(VantiqConnectorException):
                    await conn.send_query_error(ctx, {VantiqConnector.ERROR_CODE: "c"})
                with pytest.raises(VantiqConnectorException):
                    await conn.send_query_response({VantiqConnector.SOURCE_NAME: "other",
                                                    VantiqConnector.RESPONSE_ADDRESS: "x"}, 200, {})
                await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"ok": True})
                with pytest.raises(QueryAnswerError):
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"twice": True})
            rec.answer = answer
            await sim.wait_connected("s1")
            result = await sim.query("s1", {})
            assert (result["status"], result["rows"]) == (200, [{"ok": True}])
            assert len(refused) == 5
            assert sim.violations() == []


async def test_bad_notifications_raise(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            await sim.wait_connected("s1")
            conn = rec.connectors.get_connection_for_source("s1")
            with pytest.raises(NotificationError):
                await conn.send_notification([1, 2])
            with pytest.raises(TypeError):
                await conn.send_notification({"x": object()})
            with pytest.raises(TypeError):
                await conn.send_notification({"x": float("nan")})
            await conn.send_notification({"fine": (1, 2)})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"fine": [1, 2]}
            assert sim.violations() == []


async def test_bad_frames_are_skipped(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            await sim.wait_connected("s1")
            await sim.send_raw("s1", "this is not JSON")
            await sim.send_raw("s1", b"\xff\xfe binary")
            await sim.send_raw("s1", '{"op": "publish"}')
            await sim.publish("s1", {"still": "here"})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"still": "here"}
            assert sim.source_status("s1")["connections"] == 1
            assert rec.connectors.stats()["s1"]["malformed"] >= 1


async def test_a_raising_publish_handler_is_logged_and_the_next_publish_is_handled(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            original = rec.on_publish

            async def flaky(ctx, message):
                if message.get("boom"):
                    raise RuntimeError("boom")
                await original(ctx, message)
            rec.connectors.get_connection_for_source("s1").publish_handler = flaky
            await sim.wait_connected("s1")
            await sim.publish("s1", {"boom": True})
            await sim.publish("s1", {"ok": 1})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"ok": 1}


async def test_publishes_are_handled_one_at_a_time_in_order(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            active = []

            async def slow(ctx, message):
                active.append(message["i"])
                assert len(active) == 1
                await asyncio.sleep(0.001)
                active.remove(message["i"])
                await rec.conn(ctx).send_notification(message)
            rec.connectors.get_connection_for_source("s1").publish_handler = slow
            await sim.wait_connected("s1")
            await sim.publish_many("s1", [{"i": i} for i in range(50)])
            got = await sim.wait_notifications("s1", 50)
            assert [n["object"]["i"] for n in got] == list(range(50))
