"""An echo connector on vantiq_connector_sdk: what is published to a source comes back
as an event of the source, and a query is answered with rows, from a task started by the
handler (the official SDK's advice for work that takes a while).

    python echo_connector.py        # reads serverConfig/server.config
"""

import asyncio
from typing import Any, Dict

from vantiq_connector_sdk import VantiqConnector, VantiqConnectorSet, setup_logging


class EchoConnector:
    """The handlers of every source of one connector set."""

    def __init__(self, connectors: VantiqConnectorSet) -> None:
        self.connectors = connectors
        self.configs: Dict[str, Any] = {}
        self.tasks: "set[asyncio.Task[None]]" = set()
        connectors.configure_handlers_for_all(self.on_close, self.on_connect, self.on_publish, self.on_query)

    async def on_connect(self, ctx: Dict[str, Any], config: Dict[str, Any]) -> None:
        self.configs[ctx[VantiqConnector.SOURCE_NAME]] = config

    async def on_close(self, ctx: Dict[str, Any]) -> None:
        self.configs.pop(ctx[VantiqConnector.SOURCE_NAME], None)

    async def on_publish(self, ctx: Dict[str, Any], message: Dict[str, Any]) -> None:
        conn = self.connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])
        assert conn is not None
        await conn.send_notification(message)

    async def on_query(self, ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self.answer(ctx, params))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def answer(self, ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        conn = self.connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])
        assert conn is not None
        count = int(params.get("count", 1))
        if count == 0:
            await conn.send_query_response(ctx, VantiqConnector.QUERY_EMPTY, None)
            return
        await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, [{"i": i} for i in range(count)])


async def main() -> None:
    connectors = VantiqConnectorSet()
    EchoConnector(connectors)
    await connectors.run_connectors()


if __name__ == "__main__":
    setup_logging()
    asyncio.run(main())
