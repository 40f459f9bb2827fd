//! `Batch<T>`: a JSON body that may be large (a sync push or pull), read
//! whole up to the JSON limit and parsed off the request's worker thread
//! when big, so that parsing megabytes for one tenant does not hold up other
//! tenants' requests on the same worker.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::startup::JSON_LIMIT;

/// Bodies above this are parsed on a blocking thread.
const PARSE_INLINE_UP_TO: usize = 32 * 1024;

/// A parsed JSON body.
pub struct Batch<T>(pub T);

impl<T> Batch<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Batch<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Batch<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!("request bodies are limited to {JSON_LIMIT} bytes"))
}

impl<T: DeserializeOwned + Send + 'static> FromRequest for Batch<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json =
            req.content_type().is_empty()
                || req.mime_type().ok().flatten().is_some_and(|m| {
                    m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")
                });
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::BadBody(
                    "Content-Type must be application/json".into(),
                ));
            }
            let bytes = bytes
                .await
                .map_err(|e| match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => too_large(),
                    _ => ApiError::BadBody(e.to_string()),
                })?;
            let len = bytes.len();
            let parse = move || serde_json::from_slice::<T>(&bytes);
            let parsed = if len > PARSE_INLINE_UP_TO {
                tokio::task::spawn_blocking(parse)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
            } else {
                parse()
            };
            parsed
                .map(Batch)
                .map_err(|e| ApiError::BadBody(format!("Json deserialize error: {e}")))
        })
    }
}
