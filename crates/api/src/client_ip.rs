//! The address a request came from: the TCP peer, or, when the peer is a
//! trusted proxy (`server.trusted_proxies`), the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy. Anyone can send
//! `X-Forwarded-For`; it is only believed from a trusted proxy.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// An address block such as `10.0.0.0/8`, `192.0.2.7` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { network, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(blocks: &[String]) -> Result<Self, String> {
        blocks
            .iter()
            .map(|b| Cidr::parse(b))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client address of `req` (see the module's documentation);
    /// `None` only if the peer address is unknown.
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Right to left: each proxy appends the address it received from.
        let mut client = peer;
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                // A malformed entry: nothing left of it can be believed.
                Err(_) => break,
            }
        }
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_contain_their_addresses() {
        let c = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(c.contains("10.1.2.3".parse().expect("ip")));
        assert!(!c.contains("11.0.0.1".parse().expect("ip")));
        assert!(c.contains("::ffff:10.9.9.9".parse().expect("ip")));
        let one = Cidr::parse("192.0.2.7").expect("cidr");
        assert!(one.contains("192.0.2.7".parse().expect("ip")));
        assert!(!one.contains("192.0.2.8".parse().expect("ip")));
        let all = Cidr::parse("0.0.0.0/0").expect("cidr");
        assert!(all.contains("203.0.113.1".parse().expect("ip")));
        let v6 = Cidr::parse("fd00::/8").expect("cidr");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!(!v6.contains("fe80::1".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy").is_err());
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        use actix_web::test::TestRequest;
        let proxies =
            TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).expect("proxies");
        let req = |peer: &str, xff: &str| {
            TestRequest::default()
                .peer_addr(format!("{peer}:4000").parse().expect("addr"))
                .insert_header(("x-forwarded-for", xff))
                .to_http_request()
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        // Untrusted peer: its own address, whatever it claims.
        assert_eq!(
            proxies.client(&req("198.51.100.1", "1.2.3.4")),
            ip("198.51.100.1")
        );
        // Trusted peer: the nearest untrusted hop; spoofed left entries ignored.
        assert_eq!(
            proxies.client(&req("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.1.1")),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last believable hop.
        assert_eq!(
            proxies.client(&req("127.0.0.1", "203.0.113.9, junk")),
            ip("127.0.0.1")
        );
        assert_eq!(
            TrustedProxies::default().client(&req("127.0.0.1", "203.0.113.9")),
            ip("127.0.0.1")
        );
    }
}
