//! Who is writing, and through which channel. Every [`crate::TenantTx`]
//! states it transaction-locally (beside `search_path`), and the change
//! journal's triggers record it with each change. The server scopes one
//! [`Writer`] per request; code running outside any scope writes as the
//! system, through a job. SQL run by hand states nothing and is journaled
//! as `sql`.

use std::cell::RefCell;
use std::future::Future;

use uuid::Uuid;

/// Who makes a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A tenant's user, by id.
    User(Uuid),
    /// A platform operator.
    Operator,
    /// Strata itself (maintenance, provisioning, jobs).
    System,
}

/// Through which door a change came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Rest,
    Sync,
    Job,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Sync => "sync",
            Self::Job => "job",
        }
    }
}

/// The writer of the changes made while it is in scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writer {
    pub actor: Actor,
    pub channel: Channel,
    pub request_id: Option<String>,
}

impl Writer {
    /// Strata itself, as a background job.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            channel: Channel::Job,
            request_id: None,
        }
    }

    /// `(actor, user id, channel, request id)` as the journal stores them.
    pub(crate) fn settings(&self) -> (&'static str, String, &'static str, String) {
        let (actor, user) = match self.actor {
            Actor::User(id) => ("user", id.to_string()),
            Actor::Operator => ("operator", String::new()),
            Actor::System => ("system", String::new()),
        };
        (
            actor,
            user,
            self.channel.as_str(),
            self.request_id.clone().unwrap_or_default(),
        )
    }
}

tokio::task_local! {
    static WRITER: RefCell<Writer>;
}

/// Runs `f` with `writer` as the writer of its tenant transactions.
pub async fn scope<F: Future>(writer: Writer, f: F) -> F::Output {
    WRITER.scope(RefCell::new(writer), f).await
}

/// Names the acting user or operator once authenticated, inside a scope
/// (outside one it does nothing).
pub fn set_actor(actor: Actor) {
    let _ = WRITER.try_with(|w| w.borrow_mut().actor = actor);
}

/// The writer in scope, or the system's.
pub fn current() -> Writer {
    WRITER
        .try_with(|w| w.borrow().clone())
        .unwrap_or_else(|_| Writer::system())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_names_the_writer_and_authentication_the_actor() {
        assert_eq!(current(), Writer::system());
        let user = Uuid::now_v7();
        let writer = Writer {
            actor: Actor::System,
            channel: Channel::Rest,
            request_id: Some("r1".into()),
        };
        let seen = scope(writer, async {
            set_actor(Actor::User(user));
            current()
        })
        .await;
        assert_eq!(seen.actor, Actor::User(user));
        assert_eq!(seen.channel, Channel::Rest);
        assert_eq!(current(), Writer::system());
    }
}
