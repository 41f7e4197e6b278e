"""Clean shutdown: a connector process that ends abruptly (tasks still running, Ctrl-C
while connected or while retrying a server that is down, sys.exit in a handler,
run_connectors never awaited, a loop stopped and left) while messages flow exits with
status 0 and no crash. No Rust thread touches the interpreter,
so none can while it finalises; these runs repeat the race."""

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from vantiq_connector_sdk.testing import Emulator, EmulatorError

SCRIPT = Path(__file__).with_name("shutdown_connector.py")
REPEAT = 4
# What a crash, a Rust panic, or an error in the package's own shutdown path prints.
CRASH_SIGNS = ["Fatal Python error", "panicked", "Segmentation fault", "core dumped", "Exception ignored",
               "RUST_BACKTRACE", "Traceback"]


async def publish_forever(sim):
    i = 0
    while True:
        try:
            await sim.publish_many("s1", [{"i": i + k} for k in range(200)])
            i += 200
        except EmulatorError:  # not connected (yet, or any more)
            await asyncio.sleep(0.001)


async def run_once(workdir, mode):
    async with Emulator(sources={"s1": {}}) as sim:
        sim.write_server_config(workdir, tcpProbePort=0)
        if mode == "sigint-retrying":
            await sim.stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), mode, cwd=workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        publisher = asyncio.get_running_loop().create_task(publish_forever(sim))
        try:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            if mode.startswith("sigint") and line.strip() == b"READY":
                await asyncio.sleep(0.05)
                child.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(child.communicate(), 30)
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            if child.returncode is None:
                child.kill()
                await child.wait()
        text = err.decode(errors="replace")
        assert line.strip() == b"READY", text
        assert child.returncode == 0, f"exit status {child.returncode}:\n{text}"
        for sign in CRASH_SIGNS:
            assert sign not in text, text
        if mode not in ("never-awaited", "sigint-retrying"):
            assert sim.source_status("s1")["connections"] >= 1
        assert sim.violations() == []


@pytest.mark.parametrize("mode", ["exit-with-tasks", "sigint", "sigint-retrying", "exit-in-handler", "never-awaited",
                                  "loop-stopped"])
async def test_abrupt_ends_exit_cleanly(tmp_path, mode):
    for i in range(REPEAT):
        workdir = tmp_path / f"run{i}"
        workdir.mkdir()
        await run_once(workdir, mode)
