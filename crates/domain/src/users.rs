//! Users beyond their record: role membership and passwords. The rule
//! that a tenant keeps an active administrator is the tenant schema's own
//! (it holds on every path, SQL included); see the tenant migration
//! `keep_an_administrator` and [`crate::store::LAST_ADMINISTRATOR`].

use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::access::Scope;
use crate::record::USERS;
use crate::store::{self, StoreError, stmt};
use crate::validation::FieldErrors;

/// The names of `user`'s roles, sorted.
pub async fn roles_of(conn: &impl ConnectionTrait, user: Uuid) -> Result<Vec<String>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             WHERE ur.user_id = $1 ORDER BY r.name",
            [user.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

/// The user as the API shows it (never the password hash), if it exists.
pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<String>, DbErr> {
    Ok(store::find(
        conn,
        &USERS,
        crate::record::Naming::Path,
        &Scope::All,
        id,
        id,
    )
    .await?
    .map(|(json, _, _)| json))
}

/// Makes `names` the roles of `user`: roles it no longer holds are removed
/// and new ones added, so a user keeping Administrators never passes
/// through a moment without it. Unknown names are field errors of `roles`.
pub async fn set_roles(
    conn: &impl ConnectionTrait,
    user: Uuid,
    names: &[String],
) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    for name in names {
        if let Err(m) = crate::check::parameter(name, 100) {
            errors.add("roles", m);
        }
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let rows = conn
        .query_all_raw(stmt(
            "SELECT id, name FROM roles WHERE name = ANY($1::text[])",
            [names.to_vec().into()],
        ))
        .await?;
    let mut ids = Vec::new();
    for name in names {
        let found = rows
            .iter()
            .find(|r| r.try_get_by_index::<String>(1).is_ok_and(|n| &n == name));
        match found {
            Some(r) => ids.push(r.try_get_by_index::<Uuid>(0)?),
            None => errors.add("roles", format!("`{name}` is not a role of this tenant")),
        }
    }
    if names.is_empty() {
        errors.add("roles", "a user holds at least one role");
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let write = async {
        conn.execute_raw(stmt(
            "INSERT INTO user_roles (user_id, role_id) SELECT $1, unnest($2::uuid[]) \
             ON CONFLICT DO NOTHING",
            [user.into(), ids.clone().into()],
        ))
        .await?;
        conn.execute_raw(stmt(
            "DELETE FROM user_roles WHERE user_id = $1 AND role_id <> ALL($2::uuid[])",
            [user.into(), ids.into()],
        ))
        .await
    };
    write.await.map_err(|e| store::refused(&USERS, e))?;
    Ok(())
}

/// Stores `hash` (an argon2id PHC string) as `user`'s password.
pub async fn set_password_hash(
    conn: &impl ConnectionTrait,
    user: Uuid,
    hash: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        [user.into(), hash.into()],
    ))
    .await?;
    Ok(())
}
