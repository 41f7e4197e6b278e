"""The package exports the official SDK's names with the same signatures and constants
(the official vantiqconnectorsdk 1.3.7 is installed beside it, for this comparison)."""

import inspect

import vantiqconnectorsdk as official

import vantiq_connector_sdk as ours


def test_every_official_name_is_exported():
    for name in official.__all__ + ["sanitize_url"]:
        assert hasattr(ours, name), name
    assert set(official.__all__) <= set(ours.__all__)


def test_constants_are_the_official_ones():
    constants = {k: v for k, v in vars(official.VantiqConnector).items() if k.isupper()}
    assert len(constants) == 20
    for key, value in constants.items():
        assert getattr(ours.VantiqConnector, key) == value, key


def public_methods(cls):
    return {n: m for n, m in vars(cls).items() if callable(m) and not n.startswith("_")}


def test_methods_have_the_official_signatures_and_kinds():
    for cls_name in ("VantiqConnectorSet", "VantiqSourceConnection"):
        theirs = public_methods(getattr(official, cls_name))
        mine = getattr(ours, cls_name)
        for name, method in theirs.items():
            assert hasattr(mine, name), f"{cls_name}.{name}"
            got = getattr(mine, name)
            assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(method), f"{cls_name}.{name}"
            want_params = list(inspect.signature(method).parameters)
            got_params = list(inspect.signature(got).parameters)
            if cls_name == "VantiqConnectorSet" and name == "__init__":
                continue
            assert got_params[: len(want_params)] == want_params, f"{cls_name}.{name}"


def test_issue_named_calls_exist():
    for name in ["get_sources", "get_connections", "get_connection_for_source", "configure_handlers_for_all",
                 "run_connectors", "close", "declare_healthy", "declare_unhealthy", "is_healthy", "get_logger",
                 "stats", "flush"]:
        assert hasattr(ours.VantiqConnectorSet, name), name
    for name in ["configure_handlers", "connect_to_vantiq", "send_notification", "send_query_response",
                 "send_query_error", "get_source", "get_server_config", "get_connector_set", "set_connector_set",
                 "close", "declare_healthy", "declare_unhealthy", "is_healthy", "stats", "flush"]:
        assert hasattr(ours.VantiqSourceConnection, name), name


def test_exceptions_keep_the_official_hierarchy():
    assert issubclass(ours.VantiqConnectorException, RuntimeError)
    assert issubclass(ours.VantiqConnectorConfigException, ours.VantiqConnectorException)
    assert issubclass(ours.AuthenticationError, ours.VantiqConnectorConfigException)
    assert issubclass(ours.ConnectError, ours.VantiqConnectorException)
    assert issubclass(ours.ConnectError, OSError)
    assert issubclass(ours.BufferFullError, ours.NotificationError)
    assert issubclass(ours.QueryAnswerError, ours.VantiqConnectorException)


def test_sanitize_url_agrees_with_the_official_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    official.setup_logging()  # the official sanitize_url logs through the logger it sets up
    for url in ["http://localhost:8080", "https://dev.vantiq.com", "https://dev.vantiq.com/",
                "http://host:1234/api/v1/wsock/websocket", "https://h.example.com/some/path",
                "ws://host:88", "wss://host/api/v2/wsock/websocket"]:
        assert ours.sanitize_url(url) == official.sanitize_url(url), url
