//! The property keys of `server.config`, as Vantiq spells them.

pub(crate) const TARGET_SERVER: &str = "targetServer";
pub(crate) const AUTH_TOKEN: &str = "authToken";
pub(crate) const USERNAME: &str = "username";
pub(crate) const PASSWORD: &str = "password";
pub(crate) const SOURCES: &str = "sources";
pub(crate) const SEND_PINGS: &str = "sendPings";
pub(crate) const FAIL_ON_CONNECTION_ERROR: &str = "failOnConnectionError";
pub(crate) const TCP_PROBE_PORT: &str = "tcpProbePort";
pub(crate) const TCP_PROBE_HOST: &str = "tcpProbeHost";
pub(crate) const RECONNECT_SECRET: &str = "reconnectSecret";
pub(crate) const CONNECT_KW_ARGS: &str = "connectKWArgs";
pub(crate) const CA_FILE: &str = "caFile";
pub(crate) const PROXY: &str = "proxy";
pub(crate) const TRUST_STORE: &str = "trustStore";

/// Every key this SDK reads.
pub(crate) const ALL: [&str; 16] = [
    super::metrics::METRICS_PORT,
    super::metrics::METRICS_ADDRESS,
    TARGET_SERVER,
    AUTH_TOKEN,
    USERNAME,
    PASSWORD,
    SOURCES,
    SEND_PINGS,
    FAIL_ON_CONNECTION_ERROR,
    TCP_PROBE_PORT,
    TCP_PROBE_HOST,
    RECONNECT_SECRET,
    CONNECT_KW_ARGS,
    CA_FILE,
    PROXY,
    TRUST_STORE,
];

/// Keys whose values are secrets: [`ServerConfig::get`](super::ServerConfig::get) does
/// not return them.
pub(crate) const SECRET: [&str; 3] = [AUTH_TOKEN, PASSWORD, RECONNECT_SECRET];
