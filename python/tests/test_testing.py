"""The emulator of vantiq_connector_sdk.testing itself: violations, errors, timeouts,
sources, stop and restart."""

import json

import pytest
import websockets
from conftest import connector, wait_for

from vantiq_connector_sdk.testing import Emulator, EmulatorError, EmulatorTimeout


async def handshake(ws, token, source):
    await ws.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": token}))
    assert json.loads(await ws.recv())["status"] == 200
    await ws.send(json.dumps({"op": "connectExtension", "resourceName": "sources", "resourceId": source,
                              "parameters": {"reconnectSecret": "raw"}}))
    while "op" not in json.loads(message := await ws.recv()):
        pass
    assert json.loads(message)["op"] == "configureExtension"


async def test_violations_are_recorded_and_cleared():
    async with Emulator(sources={"raw": {}}) as sim:
        async with websockets.connect(sim.ws_url) as ws:
            await handshake(ws, sim.token, "raw")
            await ws.send(json.dumps({"op": "notification", "resourceName": "sources", "resourceId": "raw",
                                      "object": [1, 2]}))
            await ws.send("not json")
            violations = await sim.wait_violations(2)
        kinds = {v["kind"] for v in violations}
        assert {"notification.notObject", "json.invalid"} <= kinds
        assert all(v["detail"] for v in violations)
        sim.clear_violations()
        assert sim.violations() == []


async def test_errors_and_timeouts():
    async with Emulator(sources={"s1": {}}) as sim:
        with pytest.raises(EmulatorTimeout):
            await sim.wait_connected("s1", timeout=0.05)
        with pytest.raises(EmulatorError):
            await sim.publish("s1", {"nobody": "listens"})
        with pytest.raises(EmulatorError):
            await sim.query("unknown", {})
        assert sim.source_status("unknown") is None
        assert sim.auth_failures() == 0


async def test_server_config_text():
    async with Emulator(sources={"a": {}, "b": {}}, token="tok") as sim:
        text = sim.server_config(sendPings=True, tcpProbePort=0, authToken=None)
        assert f"targetServer = {sim.http_url}\n" in text
        assert "sources = a, b\n" in text and "sendPings = true\n" in text
        assert "authToken" not in text


async def test_sources_can_be_added_and_removed_and_the_server_restarted(workdir):
    async with Emulator(sources={"s1": {"v": 1}}) as sim:
        sim.add_source("s2", {"v": 2})
        async with connector(sim, workdir, ["s1", "s2"]) as rec:
            await sim.wait_connected("s1")
            await sim.wait_connected("s2")
            assert {s["name"]: s["config"] for s in sim.sources()} == {"s1": {"v": 1}, "s2": {"v": 2}}
            await sim.stop()
            await sim.restart()
            await sim.wait_connections("s1", 2)
            await sim.wait_connections("s2", 2)
            sim.remove_source("s2")
            assert sim.source_status("s2") is None
            await sim.publish("s1", {"still": True})
            assert (await sim.wait_notifications("s1", 1))[0]["object"] == {"still": True}
            # The sim saw the handshakes; the connect handlers run on this loop after.
            await wait_for(lambda: len(rec.connects) == 4)
            assert sorted(c for c, _ in rec.connects) == ["s1", "s1", "s2", "s2"]
