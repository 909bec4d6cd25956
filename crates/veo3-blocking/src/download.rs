//! Downloads: the blocking driver of the core's [`DownloadState`].
//!
//! Bytes stream through one fixed buffer into `<path>.part` (or a caller's writer), so memory
//! stays flat whatever the file size; the core decides what each response head and each cut
//! means (resume with `Range`, restart, refresh an expired link once, give up), and only a
//! complete, length-checked, fsynced file is renamed to its final name. Result-file requests
//! never carry the API key.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use veo3_core::download::{BodyEnd, DownloadError, DownloadState, HeadAction, ResponseHead};
use veo3_core::{Error, Event};

use crate::Client;
use crate::transport::get_file;

/// The fixed transfer buffer: memory use does not grow with the file.
const BUFFER_BYTES: usize = 64 * 1024;

/// A file downloaded and in place under its final name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Downloaded {
    /// Where the file is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Where downloaded bytes go.
trait Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Discards everything written so far (the server sent the whole file again).
    fn restart(&mut self) -> Result<(), Error>;
}

struct FileSink<'a> {
    file: File,
    path: &'a Path,
}

impl Sink for FileSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    fn restart(&mut self) -> Result<(), Error> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .map_err(|e| Error::io(format!("truncating {}", self.path.display()), e))
    }
}

struct WriterSink<'a, W: ?Sized> {
    writer: &'a mut W,
    delivered: u64,
}

impl<W: Write + ?Sized> Sink for WriterSink<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.writer
            .write_all(bytes)
            .map_err(|e| Error::io("writing the download to the writer", e))?;
        self.delivered += bytes.len() as u64;
        Ok(())
    }

    fn restart(&mut self) -> Result<(), Error> {
        if self.delivered == 0 {
            return Ok(());
        }
        Err(Error::io(
            "resuming the download",
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the file host sent the whole file again after {} bytes were written, \
                     and a writer cannot be rewound (download to a path instead)",
                    self.delivered
                ),
            ),
        ))
    }
}

impl Client {
    /// Downloads `url` to `path`: streamed into `<path>.part`, resumed with `Range` after a
    /// cut, its link refreshed once through download-url if it expired, length-checked,
    /// fsynced, then renamed to `path`. On failure the partial file is removed and nothing
    /// appears under `path`. No `Authorization` header is sent.
    pub fn download(&self, url: &str, path: impl AsRef<Path>) -> Result<Downloaded, Error> {
        let path = path.as_ref();
        let part = part_path(path)?;
        let started = self.inner.now();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
        let mut sink = FileSink { file, path: &part };
        let result = self
            .transfer(url, &mut sink)
            .and_then(|bytes| finish(sink.file, &part, path).map(|()| bytes));
        match result {
            Ok(bytes) => {
                let elapsed = self.inner.now().saturating_sub(started);
                self.inner
                    .observer
                    .emit(&Event::download_finished(bytes, elapsed));
                Ok(Downloaded {
                    path: path.to_owned(),
                    bytes,
                })
            }
            Err(error) => {
                let _ = fs::remove_file(&part);
                Err(error)
            }
        }
    }

    /// Downloads `url` into `writer` and returns the number of bytes written. Cuts are
    /// resumed with `Range`; if a server answers a resume with the whole file, the download
    /// fails rather than corrupt the output (use [`Client::download`] for files).
    pub fn download_to_writer<W: Write + ?Sized>(
        &self,
        url: &str,
        writer: &mut W,
    ) -> Result<u64, Error> {
        let started = self.inner.now();
        let mut sink = WriterSink {
            writer,
            delivered: 0,
        };
        let bytes = self.transfer(url, &mut sink)?;
        sink.writer
            .flush()
            .map_err(|e| Error::io("flushing the writer", e))?;
        let elapsed = self.inner.now().saturating_sub(started);
        self.inner
            .observer
            .emit(&Event::download_finished(bytes, elapsed));
        Ok(bytes)
    }

    /// Downloads video `index` (`0` for the first) of finished task `task_id` to `path`:
    /// record-info, then [`TaskRecord::video_urls`](veo3_types::TaskRecord::video_urls)
    /// (the stitched video of an extension), then [`Client::download`].
    pub fn download_task_video(
        &self,
        task_id: &str,
        index: usize,
        path: impl AsRef<Path>,
    ) -> Result<Downloaded, Error> {
        let record = self.record_info(task_id)?;
        let url = veo3_core::task_video(&record, index)?;
        self.download(url, path)
    }

    /// The download loop: one request per iteration, the core deciding what comes next.
    fn transfer(&self, url: &str, sink: &mut dyn Sink) -> Result<u64, Error> {
        let inner = &self.inner;
        let _span =
            tracing::info_span!("veo3.download", url = %veo3_core::download::redact_url(url))
                .entered();
        let fail = |reason: DownloadError| Error::download(url, reason);
        let started = inner.now();
        let mut state = DownloadState::new(inner.download_policy.clone());
        let mut current = url.to_owned();
        let mut buffer = vec![0u8; BUFFER_BYTES];
        loop {
            // One slot of the client's cap per attempt, given back before any pause or API
            // call (a link refresh), so a download can never wait on itself.
            let permit = inner.api.limit().acquire_blocking();
            let range = state.range_header();
            let response = match get_file(
                &inner.files,
                &current,
                range.as_deref(),
                state.if_range_header(),
            ) {
                Ok(response) => response,
                Err(failure) => {
                    tracing::debug!(%failure, written = state.written(), "download request failed");
                    drop(permit);
                    state.on_interrupted().map_err(fail)?;
                    inner.sleep(state.backoff(inner.random()));
                    continue;
                }
            };
            let head = ResponseHead {
                status: response.status,
                content_length: response.content_length,
                content_range: response.content_range.clone(),
                etag: response.etag.clone(),
            };
            let action = state.on_head(&head).map_err(fail)?;
            tracing::debug!(status = head.status, %action, written = state.written(), "download response");
            match action {
                HeadAction::AlreadyComplete => return Ok(state.written()),
                HeadAction::RefreshLink => {
                    drop(permit);
                    current = self.download_url(url)?;
                    continue;
                }
                HeadAction::Retry => {
                    drop(permit);
                    inner.sleep(state.backoff(inner.random()));
                    continue;
                }
                HeadAction::Write { truncate } => {
                    if truncate {
                        sink.restart()?;
                    }
                }
            }
            let mut body = response.body;
            let cut = loop {
                match body.read(&mut buffer) {
                    Ok(0) => break false,
                    Ok(read) => {
                        sink.write(&buffer[..read])?;
                        state.on_bytes(read as u64).map_err(fail)?;
                        self.progress(&state, started);
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        tracing::debug!(%error, written = state.written(), "download cut");
                        break true;
                    }
                }
            };
            drop(permit);
            if cut {
                state.on_interrupted().map_err(fail)?;
                inner.sleep(state.backoff(inner.random()));
                continue;
            }
            match state.on_end().map_err(fail)? {
                BodyEnd::Complete { bytes } => return Ok(bytes),
                BodyEnd::Resume => inner.sleep(state.backoff(inner.random())),
            }
        }
    }

    fn progress(&self, state: &DownloadState, started: std::time::Duration) {
        let observer = &self.inner.observer;
        if !observer.is_active() {
            return;
        }
        let elapsed = self.inner.now().saturating_sub(started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            (state.written() as f64 / elapsed) as u64
        } else {
            0
        };
        observer.emit(&Event::download_progress(
            state.written(),
            state.total(),
            rate,
        ));
    }
}

/// `<path>.part`, beside the final file so the rename cannot cross file systems.
fn part_path(path: &Path) -> Result<PathBuf, Error> {
    let name = path.file_name().filter(|_| !path.is_dir()).ok_or_else(|| {
        Error::invalid_input(format!(
            "the download target {} is not a file path",
            path.display()
        ))
    })?;
    let mut part = name.to_os_string();
    part.push(".part");
    Ok(path.with_file_name(part))
}

/// Makes the complete partial file durable, then gives it its name.
fn finish(file: File, part: &Path, path: &Path) -> Result<(), Error> {
    file.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", part.display()), e))?;
    drop(file);
    fs::rename(part, path).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", part.display(), path.display()),
            e,
        )
    })?;
    // Make the rename itself durable where directories can be synced (best effort).
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_file_sits_beside_the_final_one() {
        assert_eq!(
            part_path(Path::new("/tmp/out/video.mp4")).unwrap(),
            Path::new("/tmp/out/video.mp4.part")
        );
        assert_eq!(part_path(Path::new("v")).unwrap(), Path::new("v.part"));
        assert!(part_path(Path::new("/")).is_err());
        assert!(part_path(&std::env::temp_dir()).is_err());
    }

    #[test]
    fn a_writer_cannot_be_rewound_once_bytes_went_out() {
        let mut out = Vec::new();
        let mut sink = WriterSink {
            writer: &mut out,
            delivered: 0,
        };
        sink.restart().expect("nothing written yet");
        sink.write(b"abc").unwrap();
        let error = sink.restart().expect_err("cannot rewind");
        assert!(format!("{:?}", error).contains("cannot be rewound"));
    }
}
