"""A connector that ends in one of several abrupt ways (the mode is argv[1]), for
test_shutdown.py. It prints READY once connected, while publishes and its own
notifications are in flight."""

import asyncio
import signal
import sys

from vantiq_connector_sdk import ConnectionClosedError, VantiqConnector, VantiqConnectorSet

MODE = sys.argv[1]

# Ctrl-C raises KeyboardInterrupt, as for a user at a terminal, even when this process was
# started with SIGINT ignored (Python then installs no handler of its own: a test run from
# a background job of a shell without job control inherits that, and Ctrl-C would be lost).
signal.signal(signal.SIGINT, signal.default_int_handler)


def make():
    connectors = VantiqConnectorSet()
    ready = asyncio.Event()

    async def on_connect(ctx, config):
        if not ready.is_set():
            announce()
        ready.set()

    async def on_publish(ctx, message):
        conn = connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])
        try:
            await conn.send_notification(message)
        except ConnectionClosedError:
            return  # closing
        if MODE == "exit-in-handler" and message.get("i", 0) >= 100:
            sys.exit(0)

    connectors.configure_handlers_for_all(None, on_connect, on_publish, None)
    return connectors, ready


async def flood(connectors):
    conn = connectors.get_connection_for_source(connectors.get_sources()[0])
    i = 0
    while True:
        try:
            await conn.send_notification({"flood": i})
        except ConnectionClosedError:
            return  # closing
        i += 1
        if i % 100 == 0:
            await asyncio.sleep(0)


def announce():
    print("READY", flush=True)


async def exit_with_tasks_running():
    connectors, ready = make()
    asyncio.get_running_loop().create_task(connectors.run_connectors())
    asyncio.get_running_loop().create_task(flood(connectors))
    await ready.wait()
    await asyncio.sleep(0.05)
    # Returning: asyncio.run cancels run_connectors and the flood.


async def until_interrupted():
    connectors, ready = make()
    asyncio.get_running_loop().create_task(flood(connectors))
    run = asyncio.get_running_loop().create_task(connectors.run_connectors())
    await ready.wait()
    await run


async def interrupted_while_retrying():
    connectors, ready = make()
    run = asyncio.get_running_loop().create_task(connectors.run_connectors())
    await asyncio.sleep(0.2)  # the server is down: connection attempts and backoff
    announce()
    await run


async def never_awaited():
    connectors, ready = make()
    await connectors.declare_healthy()
    connectors.run_connectors()  # a coroutine never awaited: nothing runs
    announce()


def loop_stopped():
    loop = asyncio.new_event_loop()
    connectors, ready = make()
    loop.create_task(connectors.run_connectors())
    loop.create_task(flood(connectors))

    async def stop_when_ready():
        await ready.wait()
        await asyncio.sleep(0.05)
        loop.stop()
    loop.create_task(stop_when_ready())
    loop.run_forever()
    # The loop is left as is (not closed, tasks not cancelled): the Rust core still runs
    # while the interpreter finalises.


if MODE == "exit-with-tasks":
    asyncio.run(exit_with_tasks_running())
elif MODE == "sigint":
    try:
        asyncio.run(until_interrupted())
    except KeyboardInterrupt:
        pass
elif MODE == "sigint-retrying":
    try:
        asyncio.run(interrupted_while_retrying())
    except KeyboardInterrupt:
        pass
elif MODE == "exit-in-handler":
    async def main():
        await until_interrupted()
    asyncio.run(main())
elif MODE == "never-awaited":
    asyncio.run(never_awaited())
elif MODE == "loop-stopped":
    loop_stopped()
else:
    raise SystemExit(f"unknown mode {MODE}")
