//! Work a server repeats in the background for as long as it runs.

use std::future::Future;
use std::time::Duration;

/// Runs `work` at once and then every `interval`, until the returned task
/// is aborted. A run that takes longer than `interval` delays the next one
/// rather than being followed by a burst of runs to catch up.
pub fn every<F, Fut>(interval: Duration, mut work: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn runs_at_once_then_every_interval_until_aborted() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let task = every(Duration::from_secs(10), move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "at 0, 10 and 20 s");
        task.abort();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_delays_the_next_instead_of_a_burst() {
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = Arc::clone(&starts);
        let began = tokio::time::Instant::now();
        let task = every(Duration::from_secs(10), move || {
            let noted = Arc::clone(&noted);
            async move {
                noted.lock().expect("lock").push(began.elapsed().as_secs());
                tokio::time::sleep(Duration::from_secs(25)).await;
            }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        task.abort();
        assert_eq!(*starts.lock().expect("lock"), [0, 25, 50]);
    }
}
