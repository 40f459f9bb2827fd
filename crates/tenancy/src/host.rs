//! What a `Host` header names: the platform, a tenant's subdomain, or a
//! custom domain to look up.

use crate::slug::Slug;

/// Why a host cannot name anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the Host header is not a valid host name")]
    Malformed,
    #[error("no tenant is served at this host")]
    NoTenant,
}

/// Where a request was addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTarget {
    /// The bare base domain: platform routes only.
    Platform,
    /// `<slug>.<base domain>`.
    Subdomain(Slug),
    /// Any other host: a custom domain from the domains table, if any.
    Custom(String),
}

/// Lower-cases `raw`, drops a port and a trailing dot, and checks it is a
/// host name (ASCII letters, digits, hyphens; labels of 1 to 63
/// characters; 253 characters at most) or an IPv4 address.
pub fn normalize(raw: &str) -> Result<String, HostError> {
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return Err(HostError::Malformed),
        None => raw,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 {
        return Err(HostError::Malformed);
    }
    let labels_ok = host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !labels_ok {
        return Err(HostError::Malformed);
    }
    Ok(host)
}

/// Classifies a `Host` header against the configured base domain.
pub fn classify(raw: &str, base_domain: &str) -> Result<HostTarget, HostError> {
    let host = normalize(raw)?;
    if host == base_domain {
        return Ok(HostTarget::Platform);
    }
    match host
        .strip_suffix(base_domain)
        .and_then(|p| p.strip_suffix('.'))
    {
        Some(label) if !label.contains('.') => Slug::parse(label)
            .map(HostTarget::Subdomain)
            .map_err(|_| HostError::NoTenant),
        _ => Ok(HostTarget::Custom(host)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> HostTarget {
        HostTarget::Subdomain(Slug::parse(s).expect("valid slug"))
    }

    #[test]
    fn classifies_hosts() {
        let base = "example.com";
        assert_eq!(classify("example.com", base), Ok(HostTarget::Platform));
        assert_eq!(classify("example.com:8080", base), Ok(HostTarget::Platform));
        assert_eq!(classify("acme.example.com", base), Ok(slug("acme")));
        assert_eq!(classify("ACME.Example.COM.", base), Ok(slug("acme")));
        assert_eq!(
            classify("crm.acme.io", base),
            Ok(HostTarget::Custom("crm.acme.io".into()))
        );
        assert_eq!(
            classify("a.b.example.com", base),
            Ok(HostTarget::Custom("a.b.example.com".into()))
        );
        assert_eq!(classify("www.example.com", base), Err(HostError::NoTenant));
    }

    #[test]
    fn refuses_hostile_hosts() {
        let base = "example.com";
        for bad in [
            "a\";drop schema public;--.example.com",
            "pg_catalog.example.com",
            "ünïcode.example.com",
            "",
            ":80",
            "acme.example.com:http",
            "[::1]:80",
            "a..example.com",
            "-a.example.com",
        ] {
            assert_eq!(classify(bad, base), Err(HostError::Malformed), "{bad:?}");
        }
        let long = format!("{}.example.com", "a".repeat(300));
        assert_eq!(classify(&long, base), Err(HostError::Malformed));
    }
}
