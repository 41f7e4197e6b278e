"""How long a Python connector takes to be back after its server restarts: this package
against the official SDK, one process each, against one WebSocket server written here
(the protocol's handshake, nothing acknowledged) that goes down for DOWN seconds and comes
back on the same port, ROUNDS times.

    PYTHONPATH=$PWD/python .venv/bin/python scripts/reconnect-timing.py [DOWN ...]

(PYTHONPATH absolute, or the package installed in the venv: the connectors run in
processes of their own, in temporary directories.)

Prints, per SDK and down time, the median and worst time from the server listening
again to the connector's configuration handshake. A measurement, not a test (its figures
are in BENCHMARKS.md).
"""

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap

import websockets

ROUNDS = 8

CONNECTOR = textwrap.dedent("""
    import asyncio, sys
    from {module} import VantiqConnectorSet
    {setup}
    async def main():
        vc = VantiqConnectorSet()
        vc.configure_handlers_for_all(None, None, None, None)
        await vc.run_connectors()
    asyncio.run(main())
""")


class Server:
    def __init__(self):
        self.handshakes = asyncio.Queue()

    async def handle(self, ws):
        await ws.recv()
        await ws.send(json.dumps({"status": 200}))
        await ws.recv()
        await ws.send(json.dumps({"op": "configureExtension", "object": {"config": {}}}))
        self.handshakes.put_nowait(asyncio.get_running_loop().time())
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass


async def measure(module: str, down: float) -> list:
    loop = asyncio.get_running_loop()
    server = Server()
    ws = await websockets.serve(server.handle, "127.0.0.1", 0)
    port = ws.sockets[0].getsockname()[1]
    work = tempfile.mkdtemp()
    with open(os.path.join(work, "server.config"), "w") as f:
        f.write(f"targetServer=http://127.0.0.1:{port}\nauthToken=t\nsources=s\n")
    setup = "import vantiqconnectorsdk; vantiqconnectorsdk.setup_logging()" if module == "vantiqconnectorsdk" else ""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CONNECTOR.format(module=module, setup=setup), cwd=work,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await server.handshakes.get()
    times = []
    for _ in range(ROUNDS):
        ws.close()
        await ws.wait_closed()
        # Each down time drawn from [0.75, 1.25] x DOWN: the official SDK's fixed
        # schedule (0.5 s, 1 s, 1.5 s, ...) would otherwise meet a round number exactly.
        await asyncio.sleep(down * random.uniform(0.75, 1.25))
        ws = await websockets.serve(server.handle, "127.0.0.1", port)
        listening = loop.time()
        times.append(await asyncio.wait_for(server.handshakes.get(), 60) - listening)
    proc.kill()
    await proc.wait()
    ws.close()
    await ws.wait_closed()
    return times


async def main(downs):
    for down in downs:
        for module in ("vantiq_connector_sdk", "vantiqconnectorsdk"):
            t = await measure(module, down)
            print(f"{module:22} down {down:4.1f} s: back after median {statistics.median(t) * 1000:7.1f} ms, "
                  f"mean {statistics.mean(t) * 1000:7.1f} ms, worst {max(t) * 1000:7.1f} ms ({ROUNDS} restarts)", flush=True)


if __name__ == "__main__":
    asyncio.run(main([float(a) for a in sys.argv[1:]] or [0.0, 1.0, 3.0]))
