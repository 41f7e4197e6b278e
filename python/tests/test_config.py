"""server.config: where it is read from, what get_server_config() gives, and the errors
(as the official SDK: a missing file raises VantiqConnectorConfigException, a
RuntimeError)."""

import pytest

from vantiq_connector_sdk import (
    VantiqConnector,
    VantiqConnectorConfigException,
    VantiqConnectorException,
    VantiqConnectorSet,
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_no_server_config_is_a_config_error(workdir):
    with pytest.raises(VantiqConnectorConfigException) as e:
        VantiqConnectorSet()
    assert isinstance(e.value, RuntimeError)
    assert "server.config" in str(e.value)


@pytest.mark.parametrize("where", ["server.config", "serverConfig/server.config"])
def test_read_from_the_working_directory(workdir, where):
    write(workdir / where, "targetServer=http://localhost:9090\nauthToken=testtoken\nsources=pythonTestSource\n")
    vc = VantiqConnectorSet()
    assert vc.get_sources() == ["pythonTestSource"]
    conn = vc.get_connection_for_source("pythonTestSource")
    assert conn.get_source() == "pythonTestSource"
    assert conn.get_connector_set() is vc
    assert vc.get_connection_for_source("other") is None
    assert list(vc.get_connections()) == ["pythonTestSource"]
    sc = conn.get_server_config()
    assert sc[VantiqConnector.TARGET_SERVER] == "ws://localhost:9090/api/v1/wsock/websocket"
    assert sc[VantiqConnector.AUTH_TOKEN] == "testtoken"
    assert VantiqConnector.CONNECT_KW_ARGS not in sc


def test_server_config_dir_wins_over_the_working_directory(workdir):
    write(workdir / "serverConfig/server.config", "targetServer=http://a:1\nauthToken=t\nsources=first\n")
    write(workdir / "server.config", "targetServer=http://b:2\nauthToken=t\nsources=second\n")
    assert VantiqConnectorSet().get_sources() == ["first"]


def test_sources_list_and_extra_properties(workdir):
    write(workdir / "server.config",
          "targetServer = https://dev.vantiq.com\nauthToken = t\nsources = a, b ,c\nsendPings = true\n"
          'connectKWArgs = {"disableSslVerification": true}\ncustom = kept\n')
    vc = VantiqConnectorSet()
    assert vc.get_sources() == ["a", "b", "c"]
    sc = vc.get_connection_for_source("b").get_server_config()
    assert sc["targetServer"] == "wss://dev.vantiq.com/api/v1/wsock/websocket"
    assert sc["sendPings"] == "true"
    assert sc["custom"] == "kept"
    assert sc[VantiqConnector.CONNECT_KW_ARGS] == '{"disableSslVerification": true}'


def test_token_from_the_environment(workdir, monkeypatch):
    write(workdir / "server.config", "targetServer=http://localhost:1\nsources=s\n")
    monkeypatch.setenv("CONNECTOR_AUTH_TOKEN", "from-env")
    assert VantiqConnectorSet().get_connection_for_source("s").get_server_config()["authToken"] == "from-env"


@pytest.mark.parametrize("text, words", [
    ("targetServer=http://x:1\nauthToken=t\nsources=s\nsendPings=yes\n", ["sendPings", "yes"]),
    ("targetServer=http://x:1\nauthToken=t\nsources=s\nfailOnConnectionError=1\n", ["failOnConnectionError"]),
    ("targetServer=http://x:1\nauthToken=t\n", ["sources"]),
    ("authToken=t\nsources=s\n", ["targetServer"]),
    ("targetServer=http://x:1\nsources=s\n", ["credentials"]),
    ("targetServer=http://x:1\nauthToken=t\nsources=a,,b\n", ["sources"]),
    ("targetServer=http://x:1\nauthToken=t\nsources=s\ntcpProbePort=http\n", ["tcpProbePort"]),
    ("targetServer=http://x:1\nauthToken=t\nsources=s\nconnectKWArgs={not json\n", ["connectKWArgs"]),
])
def test_bad_configurations_are_named(workdir, text, words):
    write(workdir / "server.config", text)
    with pytest.raises(VantiqConnectorConfigException) as e:
        VantiqConnectorSet()
    for word in words:
        assert word in str(e.value)


def test_a_token_never_appears_in_errors_or_reprs(workdir):
    write(workdir / "server.config", "targetServer=http://x:1\nauthToken=s3cr3t-token\nsources=s\nsendPings=maybe\n")
    with pytest.raises(VantiqConnectorConfigException) as e:
        VantiqConnectorSet()
    assert "s3cr3t" not in str(e.value)
    write(workdir / "server.config", "targetServer=http://x:1\nauthToken=s3cr3t-token\nsources=s\n")
    vc = VantiqConnectorSet()
    conn = vc.get_connection_for_source("s")
    assert "s3cr3t" not in repr(conn) + str(conn) + repr(vc) + str(vc)


async def test_answers_need_a_running_query(workdir):
    write(workdir / "server.config", "targetServer=http://x:1\nauthToken=t\nsources=s\n")
    conn = VantiqConnectorSet().get_connection_for_source("s")
    with pytest.raises(VantiqConnectorException):
        await conn.send_query_response({"source_name": "s", "response_address": "r"}, 200, {})
    with pytest.raises(VantiqConnectorException):
        await conn.send_query_response({"source_name": "s", "response_address": "r"}, 201, {})
    with pytest.raises(VantiqConnectorException):
        await conn.send_query_response({"source_name": "s", "response_address": "r"}, 200, None)
    with pytest.raises(VantiqConnectorException):
        await conn.send_query_error(None, {})
