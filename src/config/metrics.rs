//! The keys of the metrics endpoint (issue 14): `metricsPort` and
//! `metricsAddress`. Their parsing, accessors and builder methods live here,
//! apart from the keys of the Python SDK.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::load::parse_ip;
use super::{ConfigError, ServerConfig, ServerConfigBuilder};

/// `metricsPort`: the port of the HTTP endpoint (`/metrics`, `/healthz`,
/// `/readyz`); absent, there is no endpoint.
pub(super) const METRICS_PORT: &str = "metricsPort";
/// `metricsAddress`: the IP address the endpoint listens on.
pub(super) const METRICS_ADDRESS: &str = "metricsAddress";

/// The metrics keys, as given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct MetricsKeys {
    port: Option<u16>,
    address: Option<IpAddr>,
}

impl MetricsKeys {
    /// Parses the trimmed, non-empty values of the two keys.
    pub(super) fn parse(
        port: Option<&str>,
        address: Option<&str>,
        path: &Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let port = match port {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| ConfigError::InvalidPort {
                path: path.clone(),
                key: METRICS_PORT.to_owned(),
                value: v.to_owned(),
            })?),
        };
        let address = match address {
            None => None,
            Some(v) => Some(parse_ip(v).ok_or_else(|| ConfigError::InvalidHost {
                path: path.clone(),
                key: METRICS_ADDRESS.to_owned(),
                value: v.to_owned(),
            })?),
        };
        Ok(MetricsKeys { port, address })
    }
}

impl ServerConfig {
    /// The address the metrics endpoint listens on when `metricsAddress` is
    /// not set: all IPv4 interfaces, as the TCP probe, so that Prometheus and
    /// the kubelet can reach it.
    pub const DEFAULT_METRICS_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    /// `metricsPort`: the port of the HTTP endpoint serving `/metrics`,
    /// `/healthz` and `/readyz`; `None` (the default) serves none. Port 0
    /// lets the system pick one (see `Metrics::local_addr` with the
    /// `metrics` feature).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.port
    }

    /// `metricsAddress`: the IP address the metrics endpoint listens on
    /// (default [`ServerConfig::DEFAULT_METRICS_ADDRESS`]).
    pub fn metrics_address(&self) -> IpAddr {
        self.metrics
            .address
            .unwrap_or(Self::DEFAULT_METRICS_ADDRESS)
    }

    /// The socket address of the metrics endpoint, when `metricsPort` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .port
            .map(|port| SocketAddr::new(self.metrics_address(), port))
    }
}

impl ServerConfigBuilder {
    /// `metricsPort`: serve `/metrics`, `/healthz` and `/readyz` on this port.
    #[must_use]
    pub fn metrics_port(mut self, port: u16) -> Self {
        self.metrics.port = Some(port);
        self
    }

    /// `metricsAddress`: the IP address of the metrics endpoint (default
    /// `0.0.0.0`).
    #[must_use]
    pub fn metrics_address(mut self, address: IpAddr) -> Self {
        self.metrics.address = Some(address);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let base = "targetServer=http://localhost:8080\nsources=a\nauthToken=t\n";
        ServerConfig::from_properties_str(&format!("{base}{text}"), None, None)
    }

    #[test]
    fn off_by_default() {
        let config = parse("").unwrap();
        assert_eq!(config.metrics_port(), None);
        assert_eq!(config.metrics_addr(), None);
        assert_eq!(
            config.metrics_address(),
            ServerConfig::DEFAULT_METRICS_ADDRESS
        );
    }

    #[test]
    fn port_and_address() {
        let config = parse("metricsPort = 9464\nmetricsAddress=[::1]\n").unwrap();
        assert_eq!(config.metrics_port(), Some(9464));
        assert_eq!(config.metrics_addr(), Some("[::1]:9464".parse().unwrap()));
        let config = parse("metricsPort=9464\n").unwrap();
        assert_eq!(config.metrics_addr(), Some("0.0.0.0:9464".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse("metricsPort=70000\n").unwrap_err();
        assert!(e.to_string().contains("metricsPort"), "{e}");
        assert!(e.to_string().contains("70000"), "{e}");
        let e = parse("metricsPort=9464\nmetricsAddress=localhost\n").unwrap_err();
        assert!(e.to_string().contains("metricsAddress"), "{e}");
    }

    #[test]
    fn builder() {
        let config = ServerConfig::builder("http://localhost:8080")
            .token("t")
            .source("a")
            .metrics_port(0)
            .metrics_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .build()
            .unwrap();
        assert_eq!(config.metrics_addr(), Some("127.0.0.1:0".parse().unwrap()));
    }
}
