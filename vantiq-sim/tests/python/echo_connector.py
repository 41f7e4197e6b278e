#!/usr/bin/env python3
"""The echo connector, written on the official Vantiq Python SDK (vantiqconnectorsdk).

Used by vantiq-sim's interop test to check that the emulator works with the official SDK
unchanged. It reads server.config from its working directory, as the SDK does, and serves
every source listed there:

- publish: sends the published object back as a notification;
- query {"op":"rows","count":N[,"chunk":K]}: rows {"i":0}..{"i":N-1}, in lists of K with
  status 100, the last list with 200 (204 when N is 0);
- query {"op":"fail","reason":R}: a query error with messageCode "echo.failed";
- query {"op":"config"}: 200 with the current configuration document;
- query {"op":"notify","count":N}: N notifications {"seq":i}, then 200 {"sent":N};
- anything else: a query error with messageCode "echo.unknownOp".
"""

import asyncio
import logging
import sys

import vantiqconnectorsdk as sdk
from vantiqconnectorsdk import VantiqConnector, VantiqConnectorSet

log = logging.getLogger("echo")


class Echo:
    def __init__(self, connectors: VantiqConnectorSet):
        self.connectors = connectors
        self.configs = {}

    def connection(self, ctx):
        return self.connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])

    async def on_connect(self, ctx, config):
        source = ctx[VantiqConnector.SOURCE_NAME]
        log.info("connected: %s config=%s", source, config)
        self.configs[source] = config

    async def on_close(self, ctx):
        log.info("closed: %s", ctx[VantiqConnector.SOURCE_NAME])

    async def on_publish(self, ctx, message):
        await self.connection(ctx).send_notification(message)

    async def on_query(self, ctx, params):
        conn = self.connection(ctx)
        op = params.get("op") if isinstance(params, dict) else None
        if op == "rows":
            count = int(params.get("count", 0))
            chunk = params.get("chunk")
            rows = [{"i": i} for i in range(count)]
            if count == 0:
                await conn.send_query_response(ctx, VantiqConnector.QUERY_EMPTY, None)
            elif not chunk:
                await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, rows)
            else:
                chunk = int(chunk)
                parts = [rows[i:i + chunk] for i in range(0, count, chunk)]
                for part in parts[:-1]:
                    await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, part)
                await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, parts[-1])
        elif op == "fail":
            await conn.send_query_error(ctx, {
                VantiqConnector.ERROR_CODE: "echo.failed",
                VantiqConnector.ERROR_TEMPLATE: "Failure requested: {0}",
                VantiqConnector.ERROR_PARAMETERS: [params.get("reason")],
            })
        elif op == "config":
            config = self.configs.get(ctx[VantiqConnector.SOURCE_NAME], {})
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, config)
        elif op == "notify":
            count = int(params.get("count", 0))
            for i in range(count):
                await conn.send_notification({"seq": i})
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"sent": count})
        else:
            await conn.send_query_error(ctx, {
                VantiqConnector.ERROR_CODE: "echo.unknownOp",
                VantiqConnector.ERROR_TEMPLATE: "Unknown op: {0}",
                VantiqConnector.ERROR_PARAMETERS: [op],
            })


async def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sdk.setup_logging()
    connectors = VantiqConnectorSet()
    echo = Echo(connectors)
    connectors.configure_handlers_for_all(echo.on_close, echo.on_connect, echo.on_publish, echo.on_query)
    await connectors.run_connectors()


if __name__ == "__main__":
    asyncio.run(main())
