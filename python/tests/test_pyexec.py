"""Vantiq's own connector, pyExecConnector (PyPI ``vantiqpythonexecconnector``, written
for the official ``vantiqconnectorsdk``), run unchanged on this package against the
emulator: its ``vantiqconnectorsdk`` import is answered by a one-line module that forwards
to ``vantiq_connector_sdk``, and nothing else is changed.

The connector runs in a process of its own (its ``main()``, as its console script does);
the emulator runs in this one."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import vantiq_connector_sdk
from vantiq_connector_sdk.testing import Emulator

#: The whole migration of a connector that cannot be edited: this module, first on the path.
FORWARDER = "import sys, vantiq_connector_sdk; sys.modules[__name__] = vantiq_connector_sdk\n"

#: User code answering its own query from a task it starts (``codeHandlesReturn``):
#: partial answers, then the final one, well after the connector's handler returned.
SELF_ANSWERING = textwrap.dedent("""
    import asyncio

    async def answer(count):
        for i in range(count - 1):
            await connector_connection.send_query_response(connector_context, 100, {'item': i})
        await connector_connection.send_query_response(connector_context, 200, {'item': count - 1})

    def main():
        asyncio.get_event_loop().create_task(answer(5))

    if __name__ == '__main__':
        main()
""")

NOTIFYING = textwrap.dedent("""
    import asyncio

    async def tell():
        await connector_connection.send_notification({'notify_msg': 'from user code'})

    def main():
        asyncio.get_event_loop().create_task(tell())

    if __name__ == '__main__':
        main()
""")


@pytest.fixture
def pyexec(tmp_path):
    """Starts pyExecConnector's ``main()`` in ``tmp_path`` (as its working directory)."""
    forward = tmp_path / "forward"
    forward.mkdir()
    (forward / "vantiqconnectorsdk.py").write_text(FORWARDER)
    procs = []

    def start(server_config: str) -> subprocess.Popen:
        (tmp_path / "serverConfig").mkdir(exist_ok=True)
        (tmp_path / "serverConfig" / "server.config").write_text(server_config)
        # The forwarder first, then the package these tests import (the same build).
        package_dir = os.path.dirname(os.path.dirname(vantiq_connector_sdk.__file__))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(forward), package_dir]))
        env.pop("CONNECTOR_AUTH_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-c", "import pyExecConnector; pyExecConnector.main()"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


async def test_pyexec_connector_runs_unchanged(tmp_path, pyexec):
    config = {"pythonExecConfig": {"general": {"codeCacheSize": 8}}}
    async with Emulator(sources={"pyexec": config}) as sim:
        proc = pyexec(sim.server_config())
        await sim.wait_connected("pyexec", timeout=60)

        # Code run, its globals answered as one row (4 queries, as Vantiq's own test does).
        for i in range(4):
            result = await sim.query("pyexec", {"code": f"x = {i}\ny = [1, 'two', 3.5]\nz = {{'k': None}}\n"})
            assert result["status"] == 200, result
            assert result["rows"] == [{"pythonCallResults": {"x": i, "y": [1, "two", 3.5], "z": {"k": None}}}]

        # Code that raises: answered with the connector's own error.
        result = await sim.query("pyexec", {"code": "raise ValueError('no good')"})
        assert result["status"] >= 400, result
        assert result["error"]["messageCode"] == "io.vantiq.pyexecsource.execution.exception", result
        assert "no good" in str(result["error"]["parameters"])

        # Code that answers itself, from a task, after the handler returned.
        result = await sim.query("pyexec", {"code": SELF_ANSWERING, "codeHandlesReturn": True})
        assert result["status"] == 200, result
        assert result["rows"] == [{"item": i} for i in range(5)]

        # Notifications sent by user code arrive.
        result = await sim.query("pyexec", {"code": NOTIFYING})
        assert result["status"] == 200, result
        notes = await sim.wait_notifications("pyexec", 1)
        assert notes[0]["object"] == {"notify_msg": "from user code"}

        # Cached code by name, run again by name alone.
        assert (await sim.query("pyexec", {"code": "a = 41 + 1", "name": "answer"}))["status"] == 200
        result = await sim.query("pyexec", {"name": "answer"})
        assert result["rows"] == [{"pythonCallResults": {"a": 42}}], result

        assert proc.poll() is None, "the connector is still running"
    await asyncio.sleep(0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    # It ran on this package: the Rust core's records, under the official logger's name.
    log = (tmp_path / "VantiqConnector.log").read_text()
    assert "vantiqconnectorsdk.connection" in log, out + log
