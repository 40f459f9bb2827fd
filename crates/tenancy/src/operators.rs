//! Platform operators: the people who run Strata, stored in the `public`
//! schema and signing in on the bare base domain only.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use uuid::Uuid;

use crate::error::{Error, is_duplicate};
use crate::sql::{read_one, stmt, write};

/// An operator's id and password hash, for signing in.
#[derive(Debug, Clone, FromQueryResult)]
pub struct OperatorCredentials {
    pub id: Uuid,
    pub password_hash: String,
    pub is_active: bool,
    pub credentials_epoch: i64,
}

/// Registers an operator. `email` must be validated and lower-cased, and
/// `password_hash` an argon2 PHC string, by the caller.
pub async fn create(
    db: &DatabaseConnection,
    email: &str,
    password_hash: &str,
) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    let res = write(
        db,
        stmt(
            "INSERT INTO public.platform_operators (id, email, password_hash) VALUES ($1, $2, $3)",
            [id.into(), email.into(), password_hash.into()],
        ),
    )
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
    Ok(read_one(
        db,
        stmt(
            "SELECT id, password_hash, is_active, credentials_epoch \
             FROM public.platform_operators WHERE lower(email) = $1",
            [email.into()],
        ),
    )
    .await?)
}

/// Records session `session` of `operator`, valid for `ttl_secs`.
pub async fn start_session(
    db: &DatabaseConnection,
    operator: Uuid,
    session: Uuid,
    ttl_secs: u64,
) -> Result<(), Error> {
    write(
        db,
        stmt(
            "INSERT INTO public.platform_operator_sessions (id, operator_id, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3))",
            [session.into(), operator.into(), (ttl_secs as f64).into()],
        ),
    )
    .await?;
    Ok(())
}

/// Revokes one session of `operator` (signing out).
pub async fn end_session(
    db: &DatabaseConnection,
    operator: Uuid,
    session: Uuid,
) -> Result<(), Error> {
    write(
        db,
        stmt(
            "UPDATE public.platform_operator_sessions SET revoked_at = now() \
             WHERE id = $1 AND operator_id = $2 AND revoked_at IS NULL",
            [session.into(), operator.into()],
        ),
    )
    .await?;
    Ok(())
}

/// Ends every session of operator `email` by starting a new credentials
/// epoch; with `disable`, the operator can no longer sign in either.
/// False if there is no such operator.
pub async fn revoke(db: &DatabaseConnection, email: &str, disable: bool) -> Result<bool, Error> {
    let res = write(
        db,
        stmt(
            "UPDATE public.platform_operators \
             SET credentials_epoch = credentials_epoch + 1, \
                 is_active = is_active AND NOT $2, updated_at = now() \
             WHERE lower(email) = lower($1)",
            [email.into(), disable.into()],
        ),
    )
    .await?;
    Ok(res.rows_affected() > 0)
}

/// The e-mail address of operator `id`, if it exists (to name who did
/// what).
pub async fn email_of(db: &DatabaseConnection, id: Uuid) -> Result<Option<String>, Error> {
    let row = db
        .query_one_raw(stmt(
            "SELECT email FROM public.platform_operators WHERE id = $1",
            [id.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get_by_index::<String>(0)).transpose()?)
}
