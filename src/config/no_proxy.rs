//! `NO_PROXY`: the hosts a connection reaches without the proxy, as curl and
//! Python read the list.

use std::net::IpAddr;

/// The hosts reached without the proxy (`NO_PROXY`): a comma-separated list of host
/// names, domain suffixes (with or without a leading `.` or `*.`), IP addresses, CIDR
/// ranges, or `*` for every host; each may end with `:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyHost {
    All,
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NoProxyEntry {
    host: NoProxyHost,
    port: Option<u16>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Entries that are not understood are skipped (they
    /// can only name hosts that then go through the proxy, as curl does).
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::NoProxy;
    ///
    /// let list = NoProxy::parse("localhost, .corp.example, 192.168.0.0/16, [::1], svc:8443");
    /// assert!(list.matches("localhost", 80));
    /// assert!(list.matches("a.corp.example", 443));
    /// assert!(list.matches("corp.example", 443));
    /// assert!(!list.matches("notcorp.example", 443));
    /// assert!(list.matches("192.168.4.5", 443));
    /// assert!(list.matches("::1", 443));
    /// assert!(list.matches("svc", 8443));
    /// assert!(!list.matches("svc", 443));
    /// ```
    pub fn parse(value: &str) -> NoProxy {
        let entries = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter_map(NoProxyEntry::parse)
            .collect();
        NoProxy { entries }
    }

    /// Whether `host` (a name or an IP address, without brackets) at `port` is reached
    /// directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match &entry.host {
                    NoProxyHost::All => true,
                    NoProxyHost::Ip(addr) => ip == Some(*addr),
                    NoProxyHost::Cidr(net, bits) => ip.is_some_and(|ip| in_cidr(ip, *net, *bits)),
                    NoProxyHost::Domain(domain) => {
                        host == *domain
                            || host
                                .strip_suffix(domain.as_str())
                                .is_some_and(|prefix| prefix.ends_with('.'))
                    }
                }
        })
    }
}

impl NoProxyEntry {
    fn parse(entry: &str) -> Option<NoProxyEntry> {
        if entry == "*" {
            return Some(NoProxyEntry {
                host: NoProxyHost::All,
                port: None,
            });
        }
        if let Some((net, bits)) = entry.split_once('/') {
            let net: IpAddr = net.trim_matches(['[', ']']).parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(NoProxyEntry {
                host: NoProxyHost::Cidr(net, bits),
                port: None,
            });
        }
        let (host, port) = split_host_port(entry);
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None => None,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => NoProxyHost::Ip(ip),
            Err(_) => {
                let domain = host
                    .trim_start_matches('*')
                    .trim_start_matches('.')
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if domain.is_empty() {
                    return None;
                }
                NoProxyHost::Domain(domain)
            }
        };
        Some(NoProxyEntry { host, port })
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the host comes back without brackets.
pub(super) fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (rest, None),
        }
    } else {
        match authority.rsplit_once(':') {
            // More than one colon: a bare IPv6 address (as NO_PROXY may write it).
            Some((host, _)) if host.contains(':') => (authority, None),
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_edges() {
        let all = NoProxy::parse("0.0.0.0/0, ::/0");
        assert!(all.matches("8.8.8.8", 1) && all.matches("2001:db8::1", 1));
        let one = NoProxy::parse("10.1.2.3/32");
        assert!(one.matches("10.1.2.3", 1) && !one.matches("10.1.2.4", 1));
        assert!(!one.matches("::ffff:10.1.2.3", 1));
        assert!(NoProxy::parse("host.").matches("host", 1));
        assert!(NoProxy::parse("host").matches("host.", 1));
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(split_host_port("h:1"), ("h", Some("1")));
        assert_eq!(split_host_port("[::1]:2"), ("::1", Some("2")));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("h"), ("h", None));
    }
}
