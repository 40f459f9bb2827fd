//! Host → tenant resolution and its cache: a change shows at once in the
//! process that made it, and soon in every other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenancy::testing::TestDb;
use tenancy::{Resolution, ResolveError, Resolver};

/// A caching resolver on `db`'s registry, once its listener is subscribed.
async fn listening_resolver(registry: tenancy::Registry) -> (Arc<Resolver>, impl Drop) {
    let resolver = Arc::new(Resolver::new(
        registry,
        "localhost".into(),
        false,
        Duration::from_secs(3600),
    ));
    let task = resolver.spawn_invalidation_listener();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !resolver.is_listening() {
        assert!(Instant::now() < deadline, "the listener never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    (resolver, Abort(task))
}

fn served(resolution: Result<Resolution, ResolveError>) -> bool {
    matches!(resolution, Ok(Resolution::Tenant(_)))
}

#[tokio::test]
async fn a_change_shows_at_once_in_the_process_that_made_it() {
    let db = TestDb::new(2).await;
    let tenant = db.create_tenant("acme").await;
    let registry = db.registry();
    let (resolver, _listener) = listening_resolver(registry.clone()).await;
    let host = "acme.localhost";
    for round in 0..20 {
        assert!(served(resolver.resolve(host, None).await), "round {round}");
        // Cached now; the suspension must not wait for Redis to echo it.
        registry.suspend(tenant.slug()).await.expect("suspend");
        assert!(
            matches!(
                resolver.resolve(host, None).await,
                Err(ResolveError::Suspended(_))
            ),
            "round {round}: still served right after its suspension"
        );
        registry.resume(tenant.slug()).await.expect("resume");
        assert!(
            served(resolver.resolve(host, None).await),
            "round {round}: still suspended right after it resumed"
        );
    }
}

#[tokio::test]
async fn another_process_s_change_arrives_over_redis() {
    let db = TestDb::new(2).await;
    let tenant = db.create_tenant("acme").await;
    let (resolver, _listener) = listening_resolver(db.registry()).await;
    let host = "acme.localhost";
    assert!(served(resolver.resolve(host, None).await));
    // A registry of its own: what another server or the migrator holds.
    db.registry().suspend(tenant.slug()).await.expect("suspend");
    let deadline = Instant::now() + Duration::from_secs(5);
    while served(resolver.resolve(host, None).await) {
        assert!(Instant::now() < deadline, "the suspension never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
