//! Downloads: the blocking driver of the core's [`DownloadState`] and [`PartFile`].
//!
//! Bytes stream through one fixed buffer into the locked `<path>.part` the core opens (or a
//! caller's writer), so memory stays flat whatever the file size; the core decides what each
//! response head and each cut means (resume with `Range`, restart, refresh an expired link
//! once, give up), which targets are acceptable, when progress is reported, and how a complete
//! file is made durable and named. Result-file requests never carry the API key.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use veo3_core::Error;
use veo3_core::download::{
    BodyEnd, DownloadError, DownloadState, HeadAction, PartFile, ProgressMeter, ResponseHead,
    check_refreshed_url, check_url, check_writer_restart,
};

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
    /// The coming body is about to be written: discards everything written so far first when
    /// `truncate` (the server sent the whole file again), and records its validator.
    fn prepare(&mut self, truncate: bool, state: &DownloadState) -> Result<(), Error>;
}

struct FileSink<'a> {
    file: &'a mut File,
    part: &'a mut PartFile,
}

impl Sink for FileSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", self.part.part().display()), e))
    }

    fn prepare(&mut self, truncate: bool, state: &DownloadState) -> Result<(), Error> {
        if truncate {
            self.file
                .set_len(0)
                .and_then(|()| self.file.rewind())
                .map_err(|e| Error::io(format!("truncating {}", self.part.part().display()), e))?;
        }
        self.part.record(state)
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

    fn prepare(&mut self, truncate: bool, _: &DownloadState) -> Result<(), Error> {
        check_writer_restart(truncate, self.delivered)
    }
}

impl Client {
    /// Downloads `url` to `path`.
    ///
    /// The target is checked first ([`check_target`](veo3_core::download::check_target)'s
    /// rules; an existing file is replaced only with
    /// [`DownloadPolicy::overwrite`](veo3_core::download::DownloadPolicy::overwrite)). Bytes
    /// stream into `<path>.part`, held under an exclusive lock (a second download to the same
    /// path fails at once), resumed with `Range` after a cut, the link refreshed once through
    /// download-url if it expired, length-checked, fsynced, then renamed to `path`. When the
    /// file host names a validator, the `.part` and a small sidecar survive an interruption
    /// (an error in transit, the process killed) and the next download to `path` resumes them
    /// with `If-Range`; otherwise nothing is left behind. No `Authorization` header is sent.
    pub fn download(&self, url: &str, path: impl AsRef<Path>) -> Result<Downloaded, Error> {
        check_url(url)?;
        let path = path.as_ref();
        let policy = self.inner.download_policy.clone();
        let (mut part, mut file) = PartFile::open(path, url, policy.overwrite)?;
        let state = part.state(policy);
        let mut sink = FileSink {
            file: &mut file,
            part: &mut part,
        };
        match self.transfer(url, state, &mut sink) {
            Ok(bytes) => {
                part.commit(file)?;
                Ok(Downloaded {
                    path: path.to_owned(),
                    bytes,
                })
            }
            Err(error) => Err(part.fail(error)),
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
        check_url(url)?;
        let state = DownloadState::new(self.inner.download_policy.clone());
        let mut sink = WriterSink {
            writer,
            delivered: 0,
        };
        let bytes = self.transfer(url, state, &mut sink)?;
        sink.writer
            .flush()
            .map_err(|e| Error::io("flushing the writer", e))?;
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
    fn transfer(
        &self,
        url: &str,
        mut state: DownloadState,
        sink: &mut dyn Sink,
    ) -> Result<u64, Error> {
        let inner = &self.inner;
        let _span =
            tracing::info_span!("veo3.download", url = %veo3_core::download::redact_url(url))
                .entered();
        let fail = |reason: DownloadError| Error::download(url, reason);
        let observer = &inner.observer;
        let mut progress = ProgressMeter::new(inner.now());
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
                last_modified: response.last_modified.clone(),
            };
            let action = state.on_head(&head).map_err(fail)?;
            tracing::debug!(status = head.status, %action, written = state.written(), "download response");
            match action {
                HeadAction::AlreadyComplete => {
                    progress.observe_finish(observer, inner.now(), &state);
                    return Ok(state.written());
                }
                HeadAction::RefreshLink => {
                    drop(permit);
                    current = self.download_url(url)?;
                    check_refreshed_url(url, &current)?;
                    continue;
                }
                HeadAction::Retry => {
                    drop(permit);
                    inner.sleep(state.backoff(inner.random()));
                    continue;
                }
                HeadAction::Write { truncate } => sink.prepare(truncate, &state)?,
            }
            let mut body = response.body;
            let cut = loop {
                match body.read(&mut buffer) {
                    Ok(0) => break false,
                    Ok(read) => {
                        state.on_bytes(read as u64).map_err(fail)?;
                        sink.write(&buffer[..read])?;
                        progress.observe_bytes(observer, read as u64, inner.now(), &state);
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
                BodyEnd::Complete { bytes } => {
                    progress.observe_finish(observer, inner.now(), &state);
                    return Ok(bytes);
                }
                BodyEnd::Resume => inner.sleep(state.backoff(inner.random())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_cannot_be_rewound_once_bytes_went_out() {
        let mut out = Vec::new();
        let mut sink = WriterSink {
            writer: &mut out,
            delivered: 0,
        };
        let state = DownloadState::new(veo3_core::download::DownloadPolicy::default());
        sink.prepare(true, &state).expect("nothing written yet");
        sink.write(b"abc").unwrap();
        let error = sink.prepare(true, &state).expect_err("cannot rewind");
        assert!(error.to_string().contains("cannot be rewound"));
    }
}
