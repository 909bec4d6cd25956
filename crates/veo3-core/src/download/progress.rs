//! How often a download reports progress: at most one event per [`ProgressMeter::EVERY`] of
//! the injected clock, whatever the size of the chunks the transport hands over, so a fast
//! download does not flood the observer (or a terminal's progress bar).

use std::time::Duration;

use super::DownloadState;
use crate::{Event, Observer};

/// Paces [`Event::DownloadProgress`] and computes the rate, from times read on the client's
/// injected clock.
///
/// ```
/// use std::time::Duration;
/// use veo3_core::download::{DownloadPolicy, DownloadState, ProgressMeter};
///
/// let state = DownloadState::new(DownloadPolicy::default());
/// let mut meter = ProgressMeter::new(Duration::ZERO);
/// assert!(meter.on_bytes(1024, Duration::ZERO, &state).is_some(), "the first one goes out");
/// assert!(meter.on_bytes(1024, Duration::from_millis(50), &state).is_none(), "too soon");
/// assert!(meter.on_bytes(1024, Duration::from_millis(100), &state).is_some());
/// ```
#[derive(Clone, Debug)]
pub struct ProgressMeter {
    started: Duration,
    pace: Pace,
    received: u64,
}

/// The pacing of progress events, downloads' and uploads' alike: the first is due at once,
/// then at most one per [`ProgressMeter::EVERY`] of the injected clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pace {
    last: Option<Duration>,
}

impl Pace {
    /// Whether an event is due at `now` (and if so, counts it as sent).
    pub(crate) fn due(&mut self, now: Duration) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_sub(last) < ProgressMeter::EVERY)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

impl ProgressMeter {
    /// The least time between two progress events.
    pub const EVERY: Duration = Duration::from_millis(100);

    /// A meter for a download starting at `now`.
    pub fn new(now: Duration) -> Self {
        Self {
            started: now,
            pace: Pace::default(),
            received: 0,
        }
    }

    /// `bytes` more arrived at `now`: the progress event to emit, if one is due.
    pub fn on_bytes(&mut self, bytes: u64, now: Duration, state: &DownloadState) -> Option<Event> {
        self.received = self.received.saturating_add(bytes);
        self.pace.due(now).then(|| self.progress(now, state))
    }

    /// The download ended at `now`: its last progress event and [`Event::DownloadFinished`].
    pub fn finish(&self, now: Duration, state: &DownloadState) -> [Event; 2] {
        [
            self.progress(now, state),
            Event::download_finished(state.written(), now.saturating_sub(self.started)),
        ]
    }

    /// [`ProgressMeter::on_bytes`], the event (if due) sent to `observer`; nothing is
    /// computed when no one observes. Both clients' download loops report through this.
    pub fn observe_bytes(
        &mut self,
        observer: &Observer,
        bytes: u64,
        now: Duration,
        state: &DownloadState,
    ) {
        if observer.is_active() {
            if let Some(event) = self.on_bytes(bytes, now, state) {
                observer.emit(&event);
            }
        }
    }

    /// [`ProgressMeter::finish`], both events sent to `observer`.
    pub fn observe_finish(&self, observer: &Observer, now: Duration, state: &DownloadState) {
        if observer.is_active() {
            for event in self.finish(now, state) {
                observer.emit(&event);
            }
        }
    }

    /// Bytes received in this process (a resumed download's earlier bytes are not counted).
    pub fn received(&self) -> u64 {
        self.received
    }

    fn progress(&self, now: Duration, state: &DownloadState) -> Event {
        let elapsed = now.saturating_sub(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            (self.received as f64 / elapsed) as u64
        } else {
            0
        };
        Event::download_progress(state.written(), state.total(), rate)
    }
}
