"""``VantiqConnector``: the official SDK's constants, same names and values."""

__all__ = ["VantiqConnector"]


class VantiqConnector:
    """Constants of the connector API (``vantiqconnectorsdk.VantiqConnector``)."""

    # Keys of a query error message (send_query_error).
    ERROR_CODE = "messageCode"
    ERROR_TEMPLATE = "messageTemplate"
    ERROR_PARAMETERS = "parameters"

    # Keys of the context dicts given to handlers.
    SOURCE_NAME = "source_name"
    RESPONSE_ADDRESS = "response_address"

    # Query response codes.
    QUERY_COMPLETE = 200
    QUERY_EMPTY = 204
    QUERY_PARTIAL = 100
    QUERY_ERROR = 400

    # server.config keys, and the token's environment variable.
    SOURCES = "sources"
    TARGET_SERVER = "targetServer"
    AUTH_TOKEN = "authToken"
    FIXED_RECONNECT_SECRET = "reconnectSecret"
    CONNECTOR_AUTH_TOKEN = "CONNECTOR_AUTH_TOKEN"
    SEND_PINGS = "sendPings"
    FAIL_ON_CONNECTION_ERROR = "failOnConnectionError"
    PORT_PROPERTY_NAME = "tcpProbePort"
    TCP_PROBE_PORT_DEFAULT = 8000
    CONNECT_KW_ARGS = "connectKWArgs"
    DISABLE_SSL_VERIFICATION = "disableSslVerification"
