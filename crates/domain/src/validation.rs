//! Field-by-field validation errors: every bad field is reported at once.

use serde::Serialize;

/// One field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every field that failed validation in one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{} invalid field(s)", .errors.len())]
pub struct FieldErrors {
    pub errors: Vec<FieldError>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field`, returning its value.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(value)` when no field failed.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

/// A trimmed text of `min..=max` characters without control characters.
pub fn text(value: &str, min: usize, max: usize) -> Result<String, String> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(if min == max {
            format!("must be {min} characters")
        } else {
            format!("must be {min} to {max} characters")
        });
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(v.to_owned())
}

/// An optional text: empty or absent becomes `None`.
pub fn opt_text(value: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(v, 1, max).map(Some),
    }
}

/// `check` applied to a present, non-blank `value`; blank or absent is `None`.
pub fn optional<T>(
    value: Option<&str>,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => check(v).map(Some),
    }
}

/// An e-mail address, lower-cased: one `@`, a dot in the domain, no spaces.
pub fn email(value: &str) -> Result<String, String> {
    let v = value.trim().to_lowercase();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(v)
    } else {
        Err("must be an e-mail address".into())
    }
}

/// A two-letter ISO 3166 country code, upper-cased.
pub fn country(value: &str) -> Result<String, String> {
    let v = value.trim().to_ascii_uppercase();
    if v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(v)
    } else {
        Err("must be a two-letter country code".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error() {
        let mut errs = FieldErrors::new();
        errs.check("name", text("", 1, 10));
        errs.check("email", email("nope"));
        errs.check("country", country("USA"));
        assert_eq!(errs.errors.len(), 3);
        assert_eq!(errs.errors[1].field, "email");
        assert_eq!(email(" A@B.io "), Ok("a@b.io".into()));
    }
}
