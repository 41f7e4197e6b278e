#!/usr/bin/env python3
"""The echo connector on the official Vantiq Python SDK (vantiqconnectorsdk 1.3.7), for the
benchmark (bash scripts/bench.sh).

It implements the part of the echo contract (shared/conformance/echo-contract.md) the
benchmark drives, exactly as the Rust `echo` example does, using only the SDK's public API:

- publish: sends the published object back as a notification;
- query {"op":"rows","count":N[,"chunk":K]}: rows {"i":0}..{"i":N-1}; one 200 with every row
  (204 when N is 0), or lists of K with status 100 and the last with 200;
- query {"op":"notify","count":N}: N notifications {"seq":0}..{"seq":N-1}, then 200 {"sent":N};
- query {"op":"config"}: 200 with the current configuration document;
- query {"op":"fail","reason":R}: a query error with messageCode "echo.failed";
- query {"op":"sleep","ms":M}: 200 {"slept":M} after M ms;
- anything else: a query error with messageCode "echo.unknownOp".

It reads serverConfig/server.config from its working directory, as the SDK does, and serves
every source listed there. It logs to stderr at INFO (plus the SDK's own VantiqConnector.log),
as a connector normally would.

Adapted from vantiq-sim/tests/python/echo_connector.py.
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
        log.info("configuration received: %s", source)
        self.configs[source] = config

    async def on_close(self, ctx):
        log.info("closed: %s", ctx[VantiqConnector.SOURCE_NAME])

    async def on_publish(self, ctx, message):
        await self.connection(ctx).send_notification(message)

    async def error(self, conn, ctx, code, template, params):
        await conn.send_query_error(ctx, {
            VantiqConnector.ERROR_CODE: code,
            VantiqConnector.ERROR_TEMPLATE: template,
            VantiqConnector.ERROR_PARAMETERS: params,
        })

    async def on_query(self, ctx, params):
        conn = self.connection(ctx)
        op = params.get("op") if isinstance(params, dict) else None
        if op == "rows":
            count = int(params.get("count", 0))
            chunk = params.get("chunk")
            if count == 0:
                await conn.send_query_response(ctx, VantiqConnector.QUERY_EMPTY, None)
                return
            rows = [{"i": i} for i in range(count)]
            chunk = int(chunk) if chunk else count
            parts = [rows[i:i + chunk] for i in range(0, count, chunk)]
            for part in parts[:-1]:
                await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, part)
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, parts[-1])
        elif op == "notify":
            count = int(params.get("count", 0))
            for i in range(count):
                await conn.send_notification({"seq": i})
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"sent": count})
        elif op == "config":
            config = self.configs.get(ctx[VantiqConnector.SOURCE_NAME], {})
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, config)
        elif op == "fail":
            await self.error(conn, ctx, "echo.failed", "Failure requested: {0}", [params.get("reason")])
        elif op == "sleep":
            ms = int(params.get("ms", 0))
            await asyncio.sleep(ms / 1000.0)
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, {"slept": ms})
        else:
            await self.error(conn, ctx, "echo.unknownOp", "Unknown op {0}", [op])


async def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sdk.setup_logging()
    connectors = VantiqConnectorSet()
    echo = Echo(connectors)
    connectors.configure_handlers_for_all(echo.on_close, echo.on_connect, echo.on_publish, echo.on_query)
    await connectors.run_connectors()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
