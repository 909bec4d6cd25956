//! How a streamed upload reports its bytes: the transport tells an [`UploadProgress`] what it
//! hands to the connection, and the core decides which [`Event::UploadProgress`] goes out
//! (paced on the injected clock like download progress), so both clients report the same.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(doc)]
use crate::download::ProgressMeter;
use crate::download::progress::Pace;
use crate::event::{Event, Observer};
use crate::time::Clock;

/// The progress of one streamed file upload, shared with the transport that streams it.
///
/// A transport calls [`UploadProgress::start`] when an attempt opens the file and
/// [`UploadProgress::sent`] for every piece of the file it hands to the connection. Events:
/// one at each start (0 bytes), at most one per [`ProgressMeter::EVERY`] in between, and
/// always the one where the whole file has gone out. Without an active observer it does
/// nothing.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use veo3_core::{Event, Observer, SimulatedClock, UploadProgress};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let observer = Observer::new(move |event| {
///     if let Event::UploadProgress { bytes, .. } = event {
///         sink.lock().unwrap().push(*bytes);
///     }
/// });
/// let clock = SimulatedClock::new();
/// let progress = UploadProgress::new("cat.png", 300, observer, Arc::new(clock.clone()));
/// progress.start();
/// progress.sent(100);
/// clock.advance(Duration::from_millis(100));
/// progress.sent(100);
/// progress.sent(100);
/// assert_eq!(*seen.lock().unwrap(), [0, 200, 300]);
/// ```
#[derive(Clone, Default)]
pub struct UploadProgress {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    name: String,
    total: u64,
    observer: Observer,
    clock: Arc<dyn Clock>,
    attempt: Mutex<Attempt>,
}

#[derive(Default)]
struct Attempt {
    started: Duration,
    sent: u64,
    pace: Pace,
}

impl UploadProgress {
    /// Progress of uploading `total` bytes of the file called `name`, reported to `observer`
    /// at times read on `clock`.
    pub fn new(
        name: impl Into<String>,
        total: u64,
        observer: Observer,
        clock: Arc<dyn Clock>,
    ) -> Self {
        if !observer.is_active() {
            return Self::none();
        }
        Self {
            shared: Some(Arc::new(Shared {
                name: name.into(),
                total,
                observer,
                clock,
                attempt: Mutex::default(),
            })),
        }
    }

    /// Progress that reports nothing.
    pub fn none() -> Self {
        Self { shared: None }
    }

    /// An attempt opens the file and streams it from its start.
    pub fn start(&self) {
        let Some(shared) = &self.shared else { return };
        let now = shared.clock.now();
        let mut attempt = shared.lock();
        *attempt = Attempt {
            started: now,
            ..Attempt::default()
        };
        attempt.pace.due(now);
        let event = shared.event(&attempt, now);
        drop(attempt);
        shared.observer.emit(&event);
    }

    /// `bytes` more of the file were handed to the connection.
    pub fn sent(&self, bytes: u64) {
        let Some(shared) = &self.shared else { return };
        let now = shared.clock.now();
        let mut attempt = shared.lock();
        attempt.sent = attempt.sent.saturating_add(bytes);
        let whole = bytes > 0 && attempt.sent >= shared.total;
        if !attempt.pace.due(now) && !whole {
            return;
        }
        let event = shared.event(&attempt, now);
        drop(attempt);
        shared.observer.emit(&event);
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Attempt> {
        // Only counters are behind the lock; a panic elsewhere leaves them usable.
        self.attempt.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event(&self, attempt: &Attempt, now: Duration) -> Event {
        let elapsed = now.saturating_sub(attempt.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            (attempt.sent as f64 / elapsed) as u64
        } else {
            0
        };
        Event::upload_progress(self.name.clone(), attempt.sent, self.total, rate)
    }
}

impl PartialEq for UploadProgress {
    /// The same progress (the same shared counters), or both reporting nothing.
    fn eq(&self, other: &Self) -> bool {
        match (&self.shared, &other.shared) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for UploadProgress {}

impl fmt::Debug for UploadProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shared {
            Some(shared) => f
                .debug_struct("UploadProgress")
                .field("name", &shared.name)
                .field("total", &shared.total)
                .finish_non_exhaustive(),
            None => f.write_str("UploadProgress(none)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimulatedClock;

    #[test]
    fn each_attempt_starts_at_zero_and_ends_at_the_file_size() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let observer = Observer::new(move |event| {
            if let Event::UploadProgress { bytes, total, .. } = event {
                sink.lock().unwrap().push((*bytes, *total));
            }
        });
        let clock = SimulatedClock::new();
        let progress = UploadProgress::new("a.png", 10, observer, Arc::new(clock.clone()));
        progress.start();
        for _ in 0..4 {
            progress.sent(1); // paced: within 100 ms of the start
        }
        progress.start(); // a retry
        progress.sent(10);
        assert_eq!(*seen.lock().unwrap(), [(0, 10), (0, 10), (10, 10)]);
        assert_eq!(UploadProgress::none(), UploadProgress::default());
        UploadProgress::none().sent(5);
    }
}
