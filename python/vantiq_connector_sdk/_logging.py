"""``setup_logging`` as in the official SDK, and the level from which the Rust core's
records are forwarded into Python's ``logging``."""

from __future__ import annotations

import logging
import logging.config
import os

from . import _native

__all__ = ["setup_logging", "sdk_logger", "refresh_log_level", "LOGGER_NAME"]

#: The package's logger, the official SDK's name (so a ``logger.ini`` written for it
#: applies unchanged); the core's records go to its children
#: (``vantiqconnectorsdk.connection.task``, ...).
LOGGER_NAME = "vantiqconnectorsdk"

_LOGGER_CONFIG = os.path.join("serverConfig", "logger.ini")


def sdk_logger() -> logging.Logger:
    """The package's logger."""
    return logging.getLogger(LOGGER_NAME)


def refresh_log_level() -> None:
    """Reads the level of the package's logger again, so that the core formats and
    forwards exactly the records that logger would take. Called by ``setup_logging`` and
    when connectors start; call it after changing the logging configuration later."""
    _native.set_log_level(min(sdk_logger().getEffectiveLevel(),
                              logging.getLogger("vantiq_sim").getEffectiveLevel()))


def setup_logging() -> None:
    """As the official SDK: applies ``serverConfig/logger.ini`` when it exists
    (``logging.config.fileConfig``, existing loggers kept), sets the SDK's logger to DEBUG
    and adds a handler writing INFO and above to ``VantiqConnector.log``."""
    if os.path.exists(_LOGGER_CONFIG):
        logging.config.fileConfig(_LOGGER_CONFIG, disable_existing_loggers=False)
    log = sdk_logger()
    log.setLevel(logging.DEBUG)
    handler = logging.FileHandler("VantiqConnector.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    log.addHandler(handler)
    refresh_log_level()
    # The official module keeps its logger in ``_vlog`` once set up.
    import vantiq_connector_sdk

    vantiq_connector_sdk._vlog = log
