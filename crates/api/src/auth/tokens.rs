//! Access tokens: HS256 JWTs naming the user, the tenant and the session
//! family, checked for algorithm, signature, expiry and issuer.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ISSUER: &str = "strata";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The tenant's id: a token is valid on that tenant's hosts only.
    pub tid: Uuid,
    /// The session (refresh-token family) the token was issued in.
    pub fam: Uuid,
    /// The user's roles when the token was issued, for the client's
    /// information: the server reads the current ones on every request.
    pub roles: Vec<String>,
    /// The account's credentials epoch when the token was issued; a
    /// password change starts a new one and refuses older tokens.
    #[serde(default)]
    pub epc: i64,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signing and checking keys, and token lifetimes.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

impl TokenKeys {
    pub fn new(secret: &str, access_ttl_secs: u64, refresh_ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            access_ttl_secs,
            refresh_ttl_secs,
        }
    }

    /// Signs an access token for `user` in `tenant`, session `family`,
    /// credentials epoch `epoch`.
    pub fn issue(
        &self,
        user: Uuid,
        tenant: Uuid,
        family: Uuid,
        epoch: i64,
        roles: Vec<String>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            tid: tenant,
            fam: family,
            roles,
            epc: epoch,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of `token` if it is a well-formed, unexpired HS256 token
    /// signed with this key. Any other algorithm, `none` included, is refused.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}
