//! Pull cursors: opaque to clients, signed so a forged, altered or foreign
//! (another tenant's) cursor is refused.
//!
//! A cursor says: every change made by a transaction with id below `lo` has
//! been delivered. While a multi-page pull is under way it also pins `hi`,
//! the transaction horizon taken by its first page, and where the last page
//! stopped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::SyncError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The tenant the cursor belongs to.
    pub t: Uuid,
    /// Changes by transactions below this id are delivered.
    pub lo: u64,
    /// The horizon pinned by the first page of a pull still under way.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hi: Option<u64>,
    /// Where the last page stopped: model index, transaction id, record id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub after: Option<(usize, u64, Uuid)>,
    /// The models this pull covers, for a pull under way.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub m: Option<Vec<String>>,
}

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks cursors with the server's secret.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl CursorKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        // A key of any length is accepted by HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| {
            HmacSha256::new_from_slice(b"strata").unwrap_or_else(|_| unreachable!())
        });
        mac.update(b"strata-sync-cursor:");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn encode(&self, cursor: &Cursor) -> String {
        let payload =
            serde_json::to_vec(cursor).expect("a cursor is plain data and always serialises");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.mac(&payload))
        )
    }

    /// The cursor in `text`, if this server signed it for `tenant`.
    pub fn decode(&self, text: &str, tenant: Uuid) -> Result<Cursor, SyncError> {
        let malformed = || SyncError::BadCursor("is not a cursor this server issued".into());
        let (payload, sig) = text.split_once('.').ok_or_else(malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| malformed())?;
        let mut mac = HmacSha256::new_from_slice(&self.0).map_err(|_| malformed())?;
        mac.update(b"strata-sync-cursor:");
        mac.update(&payload);
        mac.verify_slice(&sig).map_err(|_| malformed())?;
        let cursor: Cursor = serde_json::from_slice(&payload).map_err(|_| malformed())?;
        if cursor.t != tenant {
            return Err(SyncError::BadCursor("belongs to another tenant".into()));
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = CursorKey::new(b"secret");
        let t = Uuid::new_v4();
        let c = Cursor {
            t,
            lo: 42,
            hi: Some(50),
            after: Some((1, 43, Uuid::nil())),
            m: None,
        };
        let text = key.encode(&c);
        assert_eq!(key.decode(&text, t).expect("valid"), c);
        assert!(key.decode(&text, Uuid::new_v4()).is_err(), "foreign tenant");
        assert!(
            CursorKey::new(b"other").decode(&text, t).is_err(),
            "other key"
        );
        let mut forged = text.clone();
        forged.insert(3, 'x');
        assert!(key.decode(&forged, t).is_err());
        assert!(key.decode("garbage", t).is_err());
    }
}
