"""The package's pytest plugin (registered through the ``pytest11`` entry point, so it is
active wherever the package is installed): an emulator for a connector's tests.

``vantiq_sim`` is a running ``Emulator`` whose ``server.config`` is written into the
test's own working directory (``tmp_path``, made the working directory for the test), so
``VantiqConnectorSet()`` reads it as it would in production; it is stopped after the
test. Its sources come from the ``vantiq_sources`` marker (names, or a dict of names to
configuration documents; one source ``"source1"`` with ``{}`` by default)::

    import asyncio
    import pytest
    from vantiq_connector_sdk import VantiqConnectorSet

    @pytest.mark.vantiq_sources({"orders": {"table": "orders"}})
    async def test_publish_is_echoed(vantiq_sim):   # with pytest-asyncio, or anyio
        connectors = VantiqConnectorSet()
        ...  # configure handlers
        task = asyncio.create_task(connectors.run_connectors())
        await vantiq_sim.wait_connected("orders")
        await vantiq_sim.publish("orders", {"id": 1})
        assert (await vantiq_sim.wait_notifications("orders", 1))[0]["object"] == {"id": 1}
        await connectors.close()
        await task

``vantiq_sim_factory`` makes more emulators (``vantiq_sim_factory(sources=..., acks=...)``,
the ``Emulator`` arguments), all stopped after the test.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List

import pytest

from .testing import Emulator

__all__ = ["vantiq_sim", "vantiq_sim_factory"]


def pytest_configure(config: pytest.Config) -> None:
    """Declares the ``vantiq_sources`` marker."""
    config.addinivalue_line(
        "markers",
        "vantiq_sources(sources): the sources of the vantiq_sim fixture (names, or a dict of "
        "names to configuration documents)",
    )


@pytest.fixture
def vantiq_sim_factory() -> Iterator[Callable[..., Emulator]]:
    """Makes emulators (``Emulator``'s keyword arguments); each is stopped after the test."""
    made: List[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        sim = Emulator(**kwargs)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def vantiq_sim(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
               vantiq_sim_factory: Callable[..., Emulator]) -> Emulator:
    """A running emulator, its ``serverConfig/server.config`` written into ``tmp_path``,
    which is the working directory during the test (``CONNECTOR_AUTH_TOKEN`` unset)."""
    marker = request.node.get_closest_marker("vantiq_sources")
    sources: Dict[str, Any] = {"source1": {}}
    if marker is not None and marker.args:
        wanted = marker.args[0]
        sources = dict(wanted) if isinstance(wanted, dict) else {name: {} for name in wanted}
    sim = vantiq_sim_factory(sources=sources)
    sim.write_server_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONNECTOR_AUTH_TOKEN", raising=False)
    return sim
