//! Platform operators: the people who run Strata, stored in the `public`
//! schema and signing in on the bare base domain only.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use crate::error::{Error, is_duplicate};
use crate::sql::stmt;

/// An operator's id and password hash, for signing in.
#[derive(Debug, Clone, FromQueryResult)]
pub struct OperatorCredentials {
    pub id: Uuid,
    pub password_hash: String,
    pub is_active: bool,
}

/// Registers an operator. `email` must be validated and lower-cased, and
/// `password_hash` an argon2 PHC string, by the caller.
pub async fn create(
    db: &DatabaseConnection,
    email: &str,
    password_hash: &str,
) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    let res = db
        .execute_raw(stmt(
            "INSERT INTO public.platform_operators (id, email, password_hash) VALUES ($1, $2, $3)",
            [id.into(), email.into(), password_hash.into()],
        ))
        .await;
    match res {
        Ok(_) => Ok(id),
        Err(e) if is_duplicate(&e) => Err(Error::OperatorExists(email.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// The credentials of operator `email`, if registered.
pub async fn find(
    db: &DatabaseConnection,
    email: &str,
) -> Result<Option<OperatorCredentials>, Error> {
    Ok(OperatorCredentials::find_by_statement(stmt(
        "SELECT id, password_hash, is_active FROM public.platform_operators WHERE lower(email) = $1",
        [email.into()],
    ))
    .one(db)
    .await?)
}
