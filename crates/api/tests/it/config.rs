//! A bad configuration value stops the server at start, naming the key.

use std::process::Command;

#[test]
fn bad_values_fail_at_start_naming_the_key() {
    let cases = [
        ("STRATA__DATABASE__POOL_SIZE", "abc", "database.pool_size"),
        ("STRATA__DATABASE__POOL_SIZE", "0", "database.pool_size"),
        ("STRATA__DATABASE__URL", "mysql://x", "database.url"),
        ("STRATA__SERVER__LISTEN", "nonsense", "server.listen"),
        ("STRATA__REDIS__URL", "nope://", "redis.url"),
        (
            "STRATA__TENANCY__BASE_DOMAIN",
            "Example.COM:80",
            "tenancy.base_domain",
        ),
        ("STRATA__LOG__FORMAT", "xml", "log.format"),
        ("STRATA__AUTH__JWT_SECRET", "short", "auth.jwt_secret"),
        (
            "STRATA__SERVER__TRUSTED_PROXIES",
            "10.0.0.0/8,proxy.internal",
            "server.trusted_proxies",
        ),
    ];
    for (var, value, key) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_strata-server"))
            .env(var, value)
            .env_remove("STRATA_CONFIG")
            .output()
            .expect("run server");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn the_development_secret_and_placeholders_are_refused_outside_development() {
    for secret in [
        None,
        Some("change-me-change-me-change-me-change-me"),
        Some("CHANGE_ME_TO_32_BYTES_OR_MORE_OF_RANDOM"),
        Some("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata-server"));
        cmd.env_remove("STRATA_CONFIG")
            .env_remove("STRATA__SERVER__DEVELOPMENT")
            // A start that got past the secret stops at once on a database
            // that is not there (and would fail the exit-code check).
            .env("STRATA__SERVER__LISTEN", "127.0.0.1:0")
            .env("STRATA__DATABASE__URL", "postgres://127.0.0.1:1/none");
        if let Some(s) = secret {
            cmd.env("STRATA__AUTH__JWT_SECRET", s);
        }
        let out = cmd.output().expect("run server");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{secret:?}: {err}");
        assert!(err.contains("auth.jwt_secret"), "{secret:?}: {err}");
    }
}
