//! The closed sets of values CRM records take, matching the CHECK
//! constraints of the tenant tables.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value outside a closed set; names the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not one of: {accepted}")]
pub struct UnknownValue {
    pub value: String,
    pub accepted: &'static str,
}

macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value as text, in display order.
            pub const TEXTS: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue {
                        value: s.chars().take(64).collect(),
                        accepted: concat!($($text, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(
    /// Where a client stands with the tenant.
    ClientStatus { Lead => "lead", Prospect => "prospect", Active => "active", Inactive => "inactive", Archived => "archived" }
);

closed_set!(
    /// Progress of a task.
    TaskStatus { Open => "open", InProgress => "in_progress", Done => "done", Cancelled => "cancelled" }
);

closed_set!(
    /// Urgency of a task.
    TaskPriority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_values() {
        for s in ClientStatus::ALL {
            assert_eq!(s.as_str().parse::<ClientStatus>(), Ok(*s));
        }
        let err = "closed".parse::<TaskStatus>().expect_err("unknown");
        assert_eq!(err.accepted, "open in_progress done cancelled");
        assert!("URGENT".parse::<TaskPriority>().is_err());
    }
}
