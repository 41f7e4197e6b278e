"""setup_logging() and the core's records in Python's logging."""

import logging

from conftest import Records, connector

from vantiq_connector_sdk import refresh_log_level, setup_logging
from vantiq_connector_sdk.testing import Emulator

LOGGER_INI = """
[loggers]
keys=root,sdk

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_sdk]
level=INFO
handlers=file
qualname=vantiqconnectorsdk
propagate=0

[handler_file]
class=FileHandler
level=DEBUG
formatter=plain
args=('from-ini.log',)

[formatter_plain]
format=%(name)s|%(levelname)s|%(message)s
"""


def reset(logger):
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


async def test_logger_ini_and_the_core_records(workdir):
    sdk = logging.getLogger("vantiqconnectorsdk")
    (workdir / "serverConfig").mkdir()
    (workdir / "serverConfig/logger.ini").write_text(LOGGER_INI)
    try:
        setup_logging()
        assert sdk.level == logging.DEBUG  # as the official SDK
        records = Records()
        sdk.addHandler(records)
        refresh_log_level()
        async with Emulator(sources={"s1": {}}, token="tok-s3cr3t") as sim:
            async with connector(sim, workdir, sendPings=True):
                await sim.wait_connected("s1")
                await sim.drop_connection("s1")
                await sim.wait_connections("s1", 2)
        names = {r.name for r in records.records}
        assert any(n.startswith("vantiqconnectorsdk.") for n in names), names
        text = "\n".join(records.messages())
        assert "connected" in text and "s1" in text
        assert "s3cr3t" not in text
        # The ini's file handler and setup_logging's VantiqConnector.log (INFO and up).
        assert "vantiqconnectorsdk.connection" in (workdir / "from-ini.log").read_text()
        log = (workdir / "VantiqConnector.log").read_text()
        assert " - INFO - " in log and "DEBUG" not in log
    finally:
        reset(sdk)
        refresh_log_level()


async def test_only_enabled_levels_are_forwarded(workdir):
    sdk = logging.getLogger("vantiqconnectorsdk")
    records = Records()
    sdk.addHandler(records)
    sdk.setLevel(logging.ERROR)
    try:
        async with Emulator(sources={"s1": {}}) as sim:
            async with connector(sim, workdir):
                await sim.wait_connected("s1")
                await sim.drop_connection("s1")
                await sim.wait_connections("s1", 2)
        assert [r for r in records.records if r.levelno < logging.ERROR] == []
        sdk.setLevel(logging.INFO)
        async with Emulator(sources={"s1": {}}) as sim:
            async with connector(sim, workdir) as rec:
                # The core logs "connected" before it queues the connect event.
                await rec.connected.wait()
        assert any(r.levelno == logging.INFO for r in records.records)
    finally:
        reset(sdk)
        refresh_log_level()
