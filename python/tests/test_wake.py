"""How the core wakes the asyncio loop: through a socket the loop watches (``add_reader``),
or, where a loop has none (Windows' Proactor loop) or ``VANTIQ_CONNECTOR_WAKE=thread``
says so, through a thread calling ``call_soon_threadsafe``. The whole suite also runs
once with the thread forced (scripts/test.sh)."""

import asyncio
import os
import sys
import threading

from conftest import connector

from vantiq_connector_sdk import _bridge
from vantiq_connector_sdk.testing import Emulator


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without ``add_reader``, as the Proactor loop is."""

    def add_reader(self, *args, **kwargs):
        raise NotImplementedError


async def echo_round_trip(workdir) -> tuple:
    async with Emulator(sources={"s1": {}}) as sim:
        async with connector(sim, workdir) as rec:
            await sim.wait_connected("s1")
            for i in range(50):
                await sim.publish("s1", {"i": i})
            notes = await sim.wait_notifications("s1", 50)
            assert [n["object"] for n in notes] == [{"i": i} for i in range(50)]
            result = await sim.query("s1", {"x": 1})
            assert result["rows"] == [{"x": 1}]
            return _bridge.for_loop(asyncio.get_running_loop()).mode, rec


def wake_threads():
    return [t for t in threading.enumerate() if t.name == "vantiq-connector-wake"]


def test_a_loop_without_add_reader_is_woken_by_a_thread(workdir):
    loop = NoReaderLoop()
    try:
        mode, _ = loop.run_until_complete(asyncio.wait_for(echo_round_trip(workdir), 60))
    finally:
        loop.close()
    assert mode == "thread"


def test_the_environment_forces_the_thread(workdir, monkeypatch):
    monkeypatch.setenv(_bridge.WAKE_ENV, "thread")
    mode, _ = asyncio.run(asyncio.wait_for(echo_round_trip(workdir), 60))
    assert mode == "thread"


def test_the_default_loop_is_woken_through_its_reader_where_it_has_one(workdir, monkeypatch):
    if os.environ.get(_bridge.WAKE_ENV) == "thread":
        monkeypatch.delenv(_bridge.WAKE_ENV)
    mode, _ = asyncio.run(asyncio.wait_for(echo_round_trip(workdir), 60))
    # Windows' default loop (Proactor) has no add_reader.
    assert mode == ("thread" if sys.platform == "win32" else "reader")


def test_the_waking_thread_ends_with_its_loop(workdir, monkeypatch):
    monkeypatch.setenv(_bridge.WAKE_ENV, "thread")
    for _ in range(3):
        asyncio.run(asyncio.wait_for(echo_round_trip(workdir), 60))
    import gc

    gc.collect()
    for t in wake_threads():
        t.join(timeout=10)
    assert not [t for t in wake_threads() if t.is_alive()]


def test_a_bad_wake_setting_is_refused(monkeypatch):
    monkeypatch.setenv(_bridge.WAKE_ENV, "carrier-pigeon")

    async def make():
        _bridge.LoopBridge(asyncio.get_running_loop())

    try:
        asyncio.run(make())
    except ValueError as e:
        assert "VANTIQ_CONNECTOR_WAKE" in str(e)
    else:
        raise AssertionError("accepted")
