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


# The official module's module-level names (``vantiqconnectorsdk._OP_PUBLISH``, ...), same
# values: test servers copied from Vantiq's repository import them. The package
# re-exports each.
_OP_AUTHENTICATE = "authenticate"
_OP_VALIDATE = "validate"
_OP_CONNECT_EXTENSION = "connectExtension"
_OP_CONFIGURE_EXTENSION = "configureExtension"
_OP_RECONNECT_REQUIRED = "reconnectRequired"
_OP_PUBLISH = "publish"
_OP_QUERY = "query"
_OP_NOTIFY = "notification"
_PARAM_RECONNECT_SECRET = "reconnectSecret"
_CLOSED = "connectionHasBeenClosed"
#: The op of a server message that closes the connection for good (Vantiq's test servers).
_TEST_CLOSE = "testRequestsClientClose"
_CONNECTION_FAILED = "connection_failed"
_STATUS = "status"
_BODY = "body"
_RESPONSE_ADDRESS_HEADER = "X-Reply-Address"
_MESSAGE_HEADERS = "messageHeaders"
_ORIGIN_ADDRESS = "REPLY_ADDR_HEADER"
_OPERATION = "op"
_RESOURCE_NAME = "resourceName"
_RESOURCE_ID = "resourceId"
_SOURCES_RESOURCE = "sources"
_OBJECT = "object"
_PARAMETERS = "parameters"
_WEBSOCKET_URL_PATTERN = ".*/api/v[0-9]+/wsock/websocket"
_WEBSOCKET_V1_PATH = "/api/v1/wsock/websocket"

#: The names above, by name, for the package to re-export.
MODULE_CONSTANTS = {k: v for k, v in dict(globals()).items() if k.startswith("_") and k[1:2].isupper()}
