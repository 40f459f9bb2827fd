//! Tenant slugs and the schema names derived from them.
//!
//! A [`Slug`] can only be made by parsing, and a [`SchemaName`] only from a
//! slug, so a schema name in SQL never comes from raw input.

use std::fmt;

/// Words a tenant may not take: they name infrastructure, platform hosts or
/// PostgreSQL's own schemas.
const RESERVED: &[&str] = &[
    "public",
    "www",
    "api",
    "admin",
    "platform",
    "app",
    "mail",
    "smtp",
    "ftp",
    "static",
    "assets",
    "cdn",
    "docs",
    "status",
    "health",
    "ready",
    "metrics",
    "auth",
    "login",
    "signup",
    "support",
    "help",
    "blog",
    "dev",
    "test",
    "staging",
    "internal",
    "system",
    "root",
    "postgres",
    "information_schema",
    "localhost",
];

/// Why a string is not a valid slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("must be 3 to 40 characters long, got {0}")]
    Length(usize),
    #[error("may contain only lower-case letters a-z, digits and hyphens")]
    Characters,
    #[error("must start with a lower-case letter")]
    Start,
    #[error("must not end with a hyphen")]
    End,
    #[error("`{0}` is reserved")]
    Reserved(String),
}

/// A validated tenant slug: the subdomain label that names a tenant.
///
/// Lower-case ASCII letters, digits and hyphens; 3 to 40 characters; starts
/// with a letter, does not end with a hyphen; not a reserved word and not
/// starting with `pg`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Parses `input` as a slug. Nothing is trimmed or lower-cased: a slug
    /// is taken exactly as given or refused.
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let len = input.chars().count();
        if !(3..=40).contains(&len) {
            return Err(SlugError::Length(len));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlugError::Characters);
        }
        if !input.as_bytes()[0].is_ascii_lowercase() {
            return Err(SlugError::Start);
        }
        if input.ends_with('-') {
            return Err(SlugError::End);
        }
        if RESERVED.contains(&input) || input.starts_with("pg") {
            return Err(SlugError::Reserved(input.to_owned()));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PostgreSQL schema that holds this tenant's data: `t_` followed by
    /// the slug with hyphens turned into underscores (slugs have no
    /// underscores, so the mapping is one to one).
    pub fn schema_name(&self) -> SchemaName {
        SchemaName(format!("t_{}", self.0.replace('-', "_")))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a tenant's schema: derived from its [`Slug`] (`t_…`), or,
/// for a tenant made from a spare schema that kept its name, the spare's
/// (`tenant_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

/// Spares that keep their name when taken (the tenant's schema is then
/// `tenant_…`).
const OWN_NAME_PREFIX: &str = "tenant_";

/// Spares renamed to `t_<slug>` when taken.
const RENAMED_PREFIX: &str = "spare_";

impl SchemaName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new spare schema's name: `tenant_` (kept when taken) or `spare_`
    /// (renamed when taken), then 32 hex digits. Schemas named after slugs
    /// start with `t_`, so none of them meet.
    pub(crate) fn new_spare(keeps_name: bool) -> Self {
        let prefix = if keeps_name {
            OWN_NAME_PREFIX
        } else {
            RENAMED_PREFIX
        };
        Self(format!("{prefix}{}", uuid::Uuid::new_v4().simple()))
    }

    /// `name` if it is a spare schema's name (or a tenant's schema that was
    /// a spare and kept its name).
    pub(crate) fn spare(name: &str) -> Option<Self> {
        Self::hex_named(name, OWN_NAME_PREFIX).or_else(|| Self::hex_named(name, RENAMED_PREFIX))
    }

    /// Whether this spare keeps its name when taken.
    pub(crate) fn keeps_name(&self) -> bool {
        self.0.starts_with(OWN_NAME_PREFIX)
    }

    /// `name` if it is the name of a schema made from a spare that kept
    /// its name.
    pub(crate) fn kept_spare(name: &str) -> Option<Self> {
        Self::hex_named(name, OWN_NAME_PREFIX)
    }

    fn hex_named(name: &str, prefix: &str) -> Option<Self> {
        let hex = name.strip_prefix(prefix)?;
        (hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| Self(name.to_owned()))
    }

    /// The name as a quoted SQL identifier. Schema names only hold
    /// `[a-z0-9_]`, so quoting cannot be escaped; it also keeps the name from
    /// ever being read as a keyword.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for ok in ["acme", "acme-corp", "a1b2", "abc", &"a".repeat(40)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_hostile_and_malformed_slugs() {
        let cases: &[(&str, SlugError)] = &[
            ("a\";drop schema public;--", SlugError::Characters),
            ("pg_catalog", SlugError::Characters),
            ("pgadmin", SlugError::Reserved("pgadmin".into())),
            ("ACME", SlugError::Characters),
            ("acmé", SlugError::Characters),
            ("ab", SlugError::Length(2)),
            ("1acme", SlugError::Start),
            ("-acme", SlugError::Start),
            ("acme-", SlugError::End),
            ("public", SlugError::Reserved("public".into())),
            ("information_schema", SlugError::Characters),
            ("www", SlugError::Reserved("www".into())),
            ("a b c", SlugError::Characters),
        ];
        for (input, want) in cases {
            assert_eq!(Slug::parse(input).as_ref(), Err(want), "{input}");
        }
        assert_eq!(Slug::parse(&"a".repeat(300)), Err(SlugError::Length(300)));
    }

    #[test]
    fn schema_name_is_derived_and_injective() {
        let s = Slug::parse("acme-corp").expect("valid");
        assert_eq!(s.schema_name().as_str(), "t_acme_corp");
        assert_eq!(s.schema_name().quoted(), "\"t_acme_corp\"");
    }
}
