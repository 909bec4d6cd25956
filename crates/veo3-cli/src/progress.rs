//! Progress on stderr: a spinner while waiting, and a byte bar while a file is downloaded or
//! a local file is uploaded, driven by the SDK's events. Shown only on a terminal and never with `--json`, so piped output stays clean.

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
                byte_bar(&mut slot, *total).set_position(*bytes);
            }
            Event::UploadProgress {
                name, bytes, total, ..
            } => {
                let bar = byte_bar(&mut slot, Some(*total));
                bar.set_message(crate::output::clean_line(name).into_owned());
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

/// The byte bar in `slot`, replacing a spinner (or a bar of another length) with a new one of
/// `total` bytes.
fn byte_bar(slot: &mut Option<ProgressBar>, total: Option<u64>) -> ProgressBar {
    match slot.as_ref() {
        Some(bar) if bar.length() == total || (total.is_none() && bar.length().is_some()) => {
            bar.clone()
        }
        _ => {
            if let Some(old) = slot.take() {
                old.finish_and_clear();
            }
            let bar = new_byte_bar(total);
            *slot = Some(bar.clone());
            bar
        }
    }
}

fn new_byte_bar(total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}"
    } else {
        "{spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Progress {
        Progress {
            enabled: true,
            bar: Arc::default(),
        }
    }

    #[test]
    fn an_upload_shows_a_byte_bar_that_follows_the_events() {
        let progress = shown();
        progress.on_event(&Event::uploading("./cat.png", 1000));
        assert_eq!(progress.slot().as_ref().and_then(ProgressBar::length), None);
        for sent in [0, 400, 1000] {
            progress.on_event(&Event::upload_progress("./cat.png", sent, 1000, 0));
            let slot = progress.slot();
            let bar = slot.as_ref().expect("a bar");
            assert_eq!((bar.length(), bar.position()), (Some(1000), sent));
        }
        progress.on_event(&Event::uploaded(
            "./cat.png",
            "https://files.example/cat.png",
        ));
        assert!(progress.slot().is_none(), "cleared once uploaded");
    }

    #[test]
    fn a_download_after_an_upload_gets_a_bar_of_its_own() {
        let progress = shown();
        progress.on_event(&Event::upload_progress("a.png", 10, 10, 0));
        progress.on_event(&Event::download_progress(5, Some(50), 0));
        let slot = progress.slot();
        let bar = slot.as_ref().expect("a bar");
        assert_eq!((bar.length(), bar.position()), (Some(50), 5));
    }
}
