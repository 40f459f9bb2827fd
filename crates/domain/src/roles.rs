//! The roles every tenant starts with, and what each may do.

/// Manages users and roles, and everything else.
pub const ADMINISTRATORS: &str = "Administrators";
pub const MANAGERS: &str = "Managers";
pub const USERS: &str = "Users";
pub const ANALYSTS: &str = "Analysts";
pub const SALES: &str = "Sales";
pub const SUPPORT: &str = "Support";
pub const READ_ONLY: &str = "Read Only";
/// Reads every record and the audit trail; writes nothing.
pub const AUDITORS: &str = "Auditors";

/// Seeded in every new tenant.
pub const SEEDED: &[&str] = &[
    ADMINISTRATORS,
    MANAGERS,
    USERS,
    ANALYSTS,
    SALES,
    SUPPORT,
    READ_ONLY,
    AUDITORS,
];

/// What a caller may do to a kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

/// The kinds of record the role matrix covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Clients, contacts, tasks, notes.
    Crm,
    /// Branches (the tenant's own offices).
    Branches,
    /// Users and role membership.
    Users,
    /// The audit trail (the change journal), which nobody writes.
    Audit,
}

/// The role matrix: may a caller holding `roles` do `action` in `area`?
///
/// | area | read | write |
/// | --- | --- | --- |
/// | CRM records | every role | every role but Analysts, Read Only and Auditors |
/// | branches | every role | Administrators, Managers |
/// | users, roles | every role | Administrators |
/// | audit trail | Administrators, Auditors | nobody |
pub fn allows<S: AsRef<str>>(roles: &[S], area: Area, action: Action) -> bool {
    let has = |r: &str| roles.iter().any(|x| x.as_ref() == r);
    match (area, action) {
        (Area::Audit, Action::Read) => has(ADMINISTRATORS) || has(AUDITORS),
        (Area::Audit, Action::Write) => false,
        _ if has(ADMINISTRATORS) => true,
        (_, Action::Read) => !roles.is_empty(),
        (Area::Crm, Action::Write) => roles
            .iter()
            .any(|r| ![ANALYSTS, READ_ONLY, AUDITORS].contains(&r.as_ref())),
        (Area::Branches, Action::Write) => has(MANAGERS),
        (Area::Users, Action::Write) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        assert!(allows(&[SALES], Area::Crm, Action::Write));
        assert!(!allows(&[ANALYSTS], Area::Crm, Action::Write));
        assert!(!allows(&[READ_ONLY], Area::Crm, Action::Write));
        assert!(allows(&[READ_ONLY, SALES], Area::Crm, Action::Write));
        assert!(allows(&[READ_ONLY], Area::Crm, Action::Read));
        assert!(!allows::<&str>(&[], Area::Crm, Action::Read));
        assert!(!allows(&[MANAGERS], Area::Users, Action::Write));
        assert!(allows(&[MANAGERS], Area::Branches, Action::Write));
        assert!(allows(&[ADMINISTRATORS], Area::Users, Action::Write));
        assert!(allows(&[AUDITORS], Area::Audit, Action::Read));
        assert!(allows(&[ADMINISTRATORS], Area::Audit, Action::Read));
        assert!(!allows(&[MANAGERS], Area::Audit, Action::Read));
        assert!(!allows(&[ADMINISTRATORS], Area::Audit, Action::Write));
        assert!(!allows(&[AUDITORS], Area::Crm, Action::Write));
    }
}
