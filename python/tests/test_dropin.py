"""Code written for the official SDK runs unchanged: queries answered after their handler
returns, the official module's names, the test hook of Vantiq's mock servers, errors as
the official SDK raises them, servers that never acknowledge, and a streamed answer to
a server that stops reading."""

import asyncio
import gc
import json
import socket
from typing import Any, Dict, List

import pytest
import vantiqconnectorsdk as official
import websockets
from conftest import connector, free_port, running, wait_for

import vantiq_connector_sdk as ours
from vantiq_connector_sdk import (
    QueryContext,
    Settings,
    VantiqConnector,
    VantiqConnectorConfigException,
    VantiqConnectorSet,
)
from vantiq_connector_sdk.testing import Emulator

# Queries answered from anywhere ---------------------------------------------------------


async def test_a_query_is_answered_from_a_task_the_handler_started(workdir):
    """The official README's pattern: the handler sets the work running and returns."""
    tasks = []
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def later(ctx, params):
                conn = rec.conn(ctx)
                await asyncio.sleep(0)  # well after the handler returned
                for i in range(params["count"] - 1):
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, {"i": i})
                await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, [{"i": params["count"] - 1}])

            async def answer(ctx, params):
                tasks.append(asyncio.get_running_loop().create_task(later(ctx, params)))

            rec.answer = answer
            await sim.wait_connected("s1")
            for _ in range(3):
                result = await sim.query("s1", {"count": 5})
                assert result["status"] == 200, result
                assert result["rows"] == [{"i": i} for i in range(5)]
            await asyncio.gather(*tasks)


async def test_a_query_nobody_holds_any_more_gets_an_error_at_once(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def forget(ctx, params):
                pass

            rec.answer = forget
            await sim.wait_connected("s1")
            result = await sim.query("s1", {}, timeout=10)
            assert result["status"] >= 400
            assert result["error"]["messageCode"] == "io.vantiq.connector.queryNotAnswered", result


async def test_a_copy_of_the_context_keeps_the_query_open(workdir):
    kept: List[Dict[str, Any]] = []
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def keep(ctx, params):
                kept.append(ctx.copy())

            rec.answer = keep
            await sim.wait_connected("s1")
            query = asyncio.get_running_loop().create_task(sim.query("s1", {}))
            while not kept:
                await asyncio.sleep(0.01)
            gc.collect()
            ctx = kept.pop()
            assert isinstance(ctx, QueryContext) and isinstance(ctx, dict)
            assert set(ctx) == {VantiqConnector.SOURCE_NAME, VantiqConnector.RESPONSE_ADDRESS}
            # A plain dict copy answers while the query is open.
            await rec.conn(ctx).send_query_response(dict(ctx), VantiqConnector.QUERY_COMPLETE, {"late": True})
            result = await query
            assert result["status"] == 200 and result["rows"] == [{"late": True}]
            with pytest.raises(ours.QueryAnswerError):
                await rec.conn(ctx).send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"again": 1})


async def test_a_query_held_past_its_deadline_gets_an_error(workdir):
    kept = []
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir, settings=Settings(query_deadline=0.3)) as rec:
            async def keep(ctx, params):
                kept.append(ctx)

            rec.answer = keep
            await sim.wait_connected("s1")
            result = await sim.query("s1", {}, timeout=10)
            assert result["status"] >= 400, result
            assert "deadline" in json.dumps(result["error"]).lower(), result
            with pytest.raises(ours.QueryAnswerError):
                await rec.conn(kept[0]).send_query_response(kept[0], VantiqConnector.QUERY_COMPLETE, {})


async def test_a_query_handler_that_raises_still_gets_an_error_answer(workdir):
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            async def boom(ctx, params):
                raise ValueError("no such thing")

            rec.answer = boom
            await sim.wait_connected("s1")
            result = await sim.query("s1", {})
            assert result["error"]["messageCode"] == "io.vantiq.connector.queryHandlerFailed", result
            assert "no such thing" in json.dumps(result["error"])


@pytest.mark.parametrize("round_", range(3))
async def test_a_streamed_answer_survives_a_server_that_stops_reading(workdir, round_):
    """The official SDK's style (await each chunk) streaming ~20 MB, more than the answer
    budget and the socket buffers hold, to a server that stops reading in the middle."""
    rows, chunk = 100_000, 250
    pad = "x" * 200
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            sent = []

            async def stream(ctx, params):
                conn = rec.conn(ctx)
                for start in range(0, rows, chunk):
                    code = VantiqConnector.QUERY_COMPLETE if start + chunk >= rows else VantiqConnector.QUERY_PARTIAL
                    rows_ = [{"i": i, "pad": pad} for i in range(start, start + chunk)]
                    await conn.send_query_response(ctx, code, rows_)
                    sent.append(start)

            rec.answer = stream
            await sim.wait_connected("s1")
            bridge = rec.connectors._loop_bridge
            await sim.stop_reading("s1")
            query = asyncio.get_running_loop().create_task(sim.query("s1", {}, timeout=120))
            # The handler is stalled: it waits for room in the answer budget.
            await wait_for(lambda: sent and bridge.futures)
            stalled_at = len(sent)
            assert stalled_at < rows // chunk
            await sim.resume_reading("s1")
            result = await query
            assert result["status"] == 200, {k: v for k, v in result.items() if k != "rows"}
            assert len(result["rows"]) == rows
            assert [r["i"] for r in result["rows"]] == list(range(rows))
            assert len(result["frames"]) == rows // chunk


# The official module's surface ------------------------------------------------------------


def official_module_names():
    """What vantiqconnectorsdk defines at module level (not what it imports)."""
    names = {"_vlog": None}  # the official logger, once set up
    for name, value in vars(official).items():
        if name == "_vlog":
            continue
        if name.startswith("__"):
            continue
        if isinstance(value, (str, int)) or value is None:
            names[name] = value
        elif getattr(value, "__module__", None) == official.__name__:
            names[name] = value
    return names


def test_every_module_level_name_of_the_official_sdk_is_there_with_its_value():
    names = official_module_names()
    assert "_WEBSOCKET_URL_PATTERN" in names and "_TEST_CLOSE" in names and "_vlog" in names
    for name, value in names.items():
        assert hasattr(ours, name), name
        if isinstance(value, (str, int)):
            assert getattr(ours, name) == value, name


def public_attributes(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_instances_have_every_attribute_of_the_official_ones(workdir, monkeypatch):
    official.setup_logging()
    (workdir / "server.config").write_text(
        "targetServer=http://localhost:9\nauthToken=t\nsources=a,b\n"
        'connectKWArgs={"max_size": 1000000, "server_hostname": "h.example.com"}\n')
    theirs, mine = official.VantiqConnectorSet(), VantiqConnectorSet()
    missing = public_attributes(theirs) - public_attributes(mine)
    assert not missing, missing
    # Underscore attributes connector code reads.
    for name in ("_sources", "_connections", "_server_config"):
        assert hasattr(mine, name), name
    assert mine._sources == theirs._sources
    t_conn, m_conn = theirs.get_connection_for_source("a"), mine.get_connection_for_source("a")
    missing = public_attributes(t_conn) - public_attributes(m_conn)
    assert not missing, missing
    assert m_conn.connect_kw_args == t_conn.connect_kw_args == {"max_size": 1000000, "server_hostname": "h.example.com"}
    assert m_conn.disable_ssl_check is t_conn.disable_ssl_check is False
    assert m_conn.connection is None and m_conn.is_connected is False
    assert mine.healthy is theirs.healthy is None
    assert mine.socket_server is None and theirs.socket_server is None


def test_disable_ssl_verification_reads_as_the_official_sdk(workdir):
    official.setup_logging()
    (workdir / "server.config").write_text(
        "targetServer=https://localhost:9\nauthToken=t\nsources=a\n"
        'connectKWArgs={"disableSslVerification": true}\n')
    t_conn = official.VantiqConnectorSet().get_connection_for_source("a")
    m_conn = VantiqConnectorSet().get_connection_for_source("a")
    assert m_conn.disable_ssl_check is t_conn.disable_ssl_check is True
    assert set(m_conn.connect_kw_args) == set(t_conn.connect_kw_args) == {"ssl"}
    assert m_conn.connect_kw_args["ssl"].verify_mode == t_conn.connect_kw_args["ssl"].verify_mode


def test_setup_logging_sets_vlog_and_the_logger_is_the_official_one(workdir):
    ours.setup_logging()
    assert ours._vlog is not None and ours._vlog.name == "vantiqconnectorsdk"


# A server written as Vantiq's mock servers are -----------------------------------------


class MockServer:
    """A WebSocket server speaking the protocol as Vantiq's test servers do: never
    acknowledges a notification, and ends a run with ``testRequestsClientClose``."""

    def __init__(self, token="good", publishes=0):
        self.token = token
        self.publishes = publishes
        self.notifications: List[dict] = []
        self.connections = 0
        self.close_after = asyncio.Event()
        self.closed_by_client = asyncio.Event()
        self.drop_now = asyncio.Event()

    async def handle(self, ws):
        message = json.loads(await ws.recv())
        if message.get("object") != self.token:
            refusal = {"status": 401, "body": [{"code": "authFailure", "message": "invalid authToken"}]}
            await ws.send(json.dumps(refusal))
            await ws.wait_closed()
            return
        await ws.send(json.dumps({"status": 200}))
        message = json.loads(await ws.recv())
        assert message["op"] == ours._OP_CONNECT_EXTENSION
        self.connections += 1
        await ws.send(json.dumps({"op": ours._OP_CONFIGURE_EXTENSION, "object": {"config": {"n": self.connections}}}))
        for i in range(self.publishes):
            await ws.send(json.dumps({"op": ours._OP_PUBLISH, "object": {"i": i}}))
        reader = asyncio.get_running_loop().create_task(self.read(ws))
        waits = [asyncio.ensure_future(self.close_after.wait()), asyncio.ensure_future(self.drop_now.wait()), reader]
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        if self.drop_now.is_set():
            self.drop_now.clear()
            await ws.close()
            return
        if self.close_after.is_set():
            await ws.send(json.dumps({"op": ours._TEST_CLOSE}))
            await ws.wait_closed()
            self.closed_by_client.set()

    async def read(self, ws):
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("op") == ours._OP_NOTIFY:
                    self.notifications.append(message["object"])
        except websockets.ConnectionClosed:
            pass


async def serve(mock: MockServer):
    server = await websockets.serve(mock.handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_test_requests_client_close_ends_the_run_as_in_the_official_sdk(workdir):
    mock = MockServer(publishes=5)
    server, port = await serve(mock)
    try:
        (workdir / "server.config").write_text(f"targetServer=http://127.0.0.1:{port}\nauthToken=good\nsources=s1\n")
        vc = VantiqConnectorSet()
        seen = []
        closes = []

        async def on_publish(ctx, message):
            seen.append(message["i"])
            if len(seen) == 5:
                mock.close_after.set()

        async def on_close(ctx):
            closes.append(ctx[VantiqConnector.SOURCE_NAME])

        vc.configure_handlers_for_all(on_close, None, on_publish, None)
        await asyncio.wait_for(vc.run_connectors(), 20)  # returns: the server closed it
        assert seen == [0, 1, 2, 3, 4]
        assert closes == ["s1"]
        assert mock.connections == 1
        await asyncio.wait_for(mock.closed_by_client.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_token_raises_the_official_text(workdir):
    mock = MockServer(token="good")
    server, port = await serve(mock)
    try:
        (workdir / "server.config").write_text(f"targetServer=http://127.0.0.1:{port}\nauthToken=junk\nsources=s1\n")
        vc = VantiqConnectorSet()
        with pytest.raises(VantiqConnectorConfigException) as exc:
            await asyncio.wait_for(vc.get_connection_for_source("s1").connect_to_vantiq(), 20)
        assert exc.value.args == ("Connect call failed: 401 :: authFailure:invalid authToken",)
        assert isinstance(exc.value, ours.AuthenticationError)
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unknown_host_raises_an_oserror_with_errno_and_text(workdir):
    (workdir / "server.config").write_text(
        "targetServer=http://server.does.not.exist.invalid:9999\nauthToken=t\nsources=s1\nfailOnConnectionError=true\n")
    vc = VantiqConnectorSet()
    with pytest.raises(OSError) as exc:
        await asyncio.wait_for(vc.get_connection_for_source("s1").connect_to_vantiq(), 30)
    assert len(exc.value.args) == 2
    assert isinstance(exc.value, socket.gaierror)
    assert isinstance(exc.value, ours.ConnectError)
    assert exc.value.errno == socket.EAI_NONAME
    assert "server.does.not.exist.invalid" in exc.value.strerror


async def test_a_refused_connection_raises_connection_refused_errno(workdir):
    port = free_port()
    (workdir / "server.config").write_text(
        f"targetServer=http://127.0.0.1:{port}\nauthToken=t\nsources=s1\nfailOnConnectionError=true\n")
    vc = VantiqConnectorSet()
    with pytest.raises(OSError) as exc:
        await asyncio.wait_for(vc.run_connectors(), 30)
    import errno

    assert exc.value.args[0] == errno.ECONNREFUSED and len(exc.value.args) == 2


@pytest.mark.parametrize("round_", range(3))
async def test_a_server_that_never_acknowledges_is_sent_them_again_once_at_most(workdir, round_):
    mock = MockServer()
    server, port = await serve(mock)
    try:
        (workdir / "server.config").write_text(f"targetServer=http://127.0.0.1:{port}\nauthToken=good\nsources=s1\n")
        vc = VantiqConnectorSet()
        vc.configure_handlers_for_all(None, None, None, None)
        conn = vc.get_connection_for_source("s1")
        async with running(vc):
            for cycle in range(4):
                await wait_for(lambda c=cycle: mock.connections == c + 1 and conn.is_connected)
                for i in range(10):
                    await conn.send_notification({"cycle": cycle, "i": i})
                # From the second connection on, the first one's 10 came again too.
                await wait_for(lambda c=cycle: len(mock.notifications) == 10 * (c + 1) + (10 if c else 0))
                mock.drop_now.set()
            await wait_for(lambda: mock.connections == 5)
            await vc.flush()
        # In order; the first connection's 10 sent again once after the first drop (a
        # server not yet seen acknowledging may have lost them), never again after that.
        sent = [[{"cycle": c, "i": i} for i in range(10)] for c in range(4)]
        assert mock.notifications == sent[0] + sent[0] + sent[1] + sent[2] + sent[3]
        assert conn.stats()["resent"] == 10
    finally:
        server.close()
        await server.wait_closed()


async def test_a_restarted_server_is_reconnected_to(workdir):
    """A server restarted on the same port, again and again (how fast: BENCHMARKS.md)."""
    mock = MockServer()
    server, port = await serve(mock)
    (workdir / "server.config").write_text(f"targetServer=http://127.0.0.1:{port}\nauthToken=good\nsources=s1\n")
    vc = VantiqConnectorSet()
    vc.configure_handlers_for_all(None, None, None, None)
    conn = vc.get_connection_for_source("s1")
    async with running(vc):
        await wait_for(lambda: conn.is_connected)
        for n in range(2, 6):
            server.close()
            await server.wait_closed()
            server = await websockets.serve(mock.handle, "127.0.0.1", port)
            await wait_for(lambda n=n: mock.connections == n and conn.is_connected)
        assert conn.stats()["reconnections"] >= 4
    server.close()
    await server.wait_closed()


async def test_connect_kw_args_are_applied_as_on_the_rust_side(workdir):
    """``connectKWArgs`` keywords of ``websockets.connect`` mean the same here:
    ``max_size`` bounds the server messages taken (a larger one is skipped)."""
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir, connectKWArgs='{"max_size": 1000}') as rec:
            await sim.wait_connected("s1")
            await sim.publish("s1", {"big": "x" * 1200})
            await sim.publish("s1", {"small": 1})
            await wait_for(lambda: len(rec.publishes) == 1)
            assert rec.publishes == [("s1", {"small": 1})]
            assert rec.conn({VantiqConnector.SOURCE_NAME: "s1"}).stats()["malformed"] == 1
