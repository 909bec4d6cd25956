//! Progress on stderr: a spinner while waiting and a bar while downloading, driven by the
//! SDK's events. Shown only on a terminal and never with `--json`, so piped output stays clean.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use veo3_core::{Event, Observer};

/// Owns the current bar, if any, and turns events into updates.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    enabled: bool,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    /// Progress that draws only when stderr is a terminal and `quiet` is off.
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: Arc::default(),
        }
    }

    /// An observer feeding this progress display.
    pub(crate) fn observer(&self) -> Observer {
        let progress = self.clone();
        Observer::new(move |event| progress.on_event(event))
    }

    /// Clears whatever is drawn (before printing a result or an error).
    pub(crate) fn clear(&self) {
        if let Some(bar) = self.slot().take() {
            bar.finish_and_clear();
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // A poisoned lock only means a draw panicked; the bar is still usable.
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn on_event(&self, event: &Event) {
        if !self.enabled {
            return;
        }
        let mut slot = self.slot();
        match event {
            Event::Polled { .. }
            | Event::Retrying { .. }
            | Event::Submitted { .. }
            | Event::Uploading { .. } => {
                let bar = slot.get_or_insert_with(spinner);
                // Server messages (e.g. an upgrade's progress) pass through here too.
                bar.set_message(crate::output::clean_line(&event.to_string()).into_owned());
            }
            Event::DownloadProgress { bytes, total, .. } => {
                let bar = match slot.as_ref() {
                    Some(bar) if bar.length().is_some() || total.is_none() => bar.clone(),
                    _ => {
                        if let Some(old) = slot.take() {
                            old.finish_and_clear();
                        }
                        let bar = download_bar(*total);
                        *slot = Some(bar.clone());
                        bar
                    }
                };
                bar.set_position(*bytes);
            }
            Event::Finished { .. } | Event::DownloadFinished { .. } | Event::Uploaded { .. } => {
                if let Some(bar) = slot.take() {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn download_bar(total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
