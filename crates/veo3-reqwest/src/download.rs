//! Downloads: the client drives the core's [`DownloadState`] and only moves bytes.
//!
//! Bytes go to `<file>.part` through a fixed-size buffer (memory stays flat whatever the file
//! size) and the file gets its final name by an atomic rename only once the state machine says
//! the body is complete and its length checks out. Requests to the file host carry no
//! `Authorization` header: the key is added per API request, never to the HTTP client.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, LAST_MODIFIED, RANGE,
};
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufWriter};
use veo3_core::download::{
    BodyEnd, DownloadError, DownloadState, HeadAction, PartFile, ProgressMeter, ResponseHead,
    TargetProblem, check_refreshed_url, check_url, check_writer_restart, redact_url,
};
use veo3_core::{Error, Veo3Api};

use crate::Client;
use crate::transport::describe;

/// Size of the write buffer between the network and the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// A finished download: the file is complete under its final name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Downloaded {
    /// Where the file is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Where the bytes go.
enum Sink<'a, W: ?Sized> {
    /// The locked `.part` of a download to a path.
    File {
        writer: &'a mut BufWriter<File>,
        part: &'a mut PartFile,
    },
    /// A caller's writer and the bytes it has taken.
    Writer { writer: &'a mut W, delivered: u64 },
}

impl<W: AsyncWrite + Unpin + Send + ?Sized> Sink<'_, W> {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Self::File { writer, part } => writer
                .write_all(bytes)
                .await
                .map_err(|source| Error::io(format!("writing {}", part.part().display()), source)),
            Self::Writer { writer, delivered } => {
                writer
                    .write_all(bytes)
                    .await
                    .map_err(|source| Error::io("writing the download to the writer", source))?;
                *delivered += bytes.len() as u64;
                Ok(())
            }
        }
    }

    /// The bytes of the coming body are about to be written: empties what was written first
    /// when `truncate` (the server sent the whole file instead of a range), and records their
    /// validator for a later resume.
    async fn prepare(&mut self, truncate: bool, state: &DownloadState) -> Result<(), Error> {
        match self {
            Self::File { writer, part } => {
                if truncate {
                    let rewind = async {
                        writer.flush().await?;
                        writer.get_mut().set_len(0).await?;
                        writer.get_mut().rewind().await?;
                        Ok::<_, io::Error>(())
                    };
                    rewind.await.map_err(|source| {
                        Error::io(format!("truncating {}", part.part().display()), source)
                    })?;
                }
                part.record(state)
            }
            Self::Writer { delivered, .. } => check_writer_restart(truncate, *delivered),
        }
    }
}

impl Client {
    /// Downloads `url` (a result file) to `path`.
    ///
    /// The target is checked first ([`check_target`](veo3_core::download::check_target)'s
    /// rules; an existing file is replaced only with
    /// [`DownloadPolicy::overwrite`](veo3_core::download::DownloadPolicy::overwrite)). Bytes go
    /// to `<path>.part`, held under an exclusive lock (a second download to the same path
    /// fails at once), and it is fsynced and renamed to `path` only when the body is complete
    /// and its length matches what the server announced. A cut transfer resumes with `Range`
    /// (up to the policy's resumes); an expired link (401/403/404/410) is replaced once with a
    /// fresh one from the download-url endpoint. When the file host names a validator, the
    /// `.part` and a small sidecar survive an interruption (an error in transit, the future
    /// dropped, the process killed) and the next download to `path` resumes them with
    /// `If-Range`; otherwise nothing is left behind. The request never carries the API key.
    /// Progress goes to the observer.
    pub async fn download(&self, url: &str, path: impl AsRef<Path>) -> Result<Downloaded, Error> {
        check_url(url)?;
        let path = path.as_ref();
        let policy = self.inner.download_policy.clone();
        let (mut part, file) = self.open_part(path, url, policy.overwrite).await?;
        let state = part.state(policy);
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, File::from_std(file));
        let mut sink: Sink<'_, tokio::io::Sink> = Sink::File {
            writer: &mut writer,
            part: &mut part,
        };
        let result = self.transfer(url, state, &mut sink).await;
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(error) => return Err(part.fail(error)),
        };
        if let Err(source) = writer.flush().await {
            let error = Error::io(format!("writing {}", part.part().display()), source);
            return Err(part.fail(error));
        }
        let file = writer.into_inner().into_std().await;
        // fsync of a large file and of the folder: off the runtime's threads.
        tokio::task::spawn_blocking(move || part.commit(file))
            .await
            .map_err(|join| Error::io("finishing the download", io::Error::other(join)))??;
        tracing::info!(url = %redact_url(url), path = %path.display(), bytes, "downloaded");
        Ok(Downloaded {
            path: path.to_owned(),
            bytes,
        })
    }

    /// [`PartFile::open`], with a moment's grace for a `.part` this process is still closing:
    /// a download future dropped half-way releases its file (and lock) only when its last
    /// write lands on a blocking thread, and a retry started right after it should not be
    /// told that another download is running. A download that really is running still gets
    /// [`TargetProblem::Busy`] after about a second.
    async fn open_part(
        &self,
        path: &Path,
        url: &str,
        overwrite: bool,
    ) -> Result<(PartFile, std::fs::File), Error> {
        let mut attempts = 0;
        loop {
            match PartFile::open(path, url, overwrite) {
                Err(Error::Target {
                    problem: TargetProblem::Busy { .. },
                    ..
                }) if attempts < 25 => {
                    attempts += 1;
                    self.effects()
                        .sleeper()
                        .sleep(Duration::from_millis(40))
                        .await;
                }
                other => return other,
            }
        }
    }

    /// Downloads `url` into `writer`, returning the bytes written. Resumes after cuts like
    /// [`Client::download`]; if the server then ignores the range and resends the whole file,
    /// the download fails (a writer cannot be rewound). The writer is flushed at the end.
    pub async fn download_to_writer<W>(&self, url: &str, writer: &mut W) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        check_url(url)?;
        let state = veo3_core::download::DownloadState::new(self.inner.download_policy.clone());
        let mut sink = Sink::Writer {
            writer: &mut *writer,
            delivered: 0,
        };
        let bytes = self.transfer(url, state, &mut sink).await?;
        writer
            .flush()
            .await
            .map_err(|source| Error::io("flushing the writer", source))?;
        Ok(bytes)
    }

    /// Downloads video `index` of a finished task (its
    /// [`TaskRecord::video_urls`](veo3_types::TaskRecord::video_urls)) to `path`.
    pub async fn download_task_video(
        &self,
        task_id: &str,
        index: usize,
        path: impl AsRef<Path>,
    ) -> Result<Downloaded, Error> {
        let record = self.record_info(task_id).await?;
        let url = veo3_core::task_video(&record, index)?;
        self.download(url, path).await
    }

    /// The download loop: requests, feeds the state machine, writes, resumes.
    async fn transfer<W>(
        &self,
        original: &str,
        mut state: DownloadState,
        sink: &mut Sink<'_, W>,
    ) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let failed = |reason: DownloadError| Error::download(original, reason);
        let http = &self.inner.api.transport().http;
        let effects = self.effects();
        let idle = self.inner.download_idle_timeout;
        let observer = effects.observer();
        let mut progress = ProgressMeter::new(effects.now());
        let mut url = original.to_owned();
        let redacted = redact_url(original);
        loop {
            // One slot of the client's cap per attempt, given back before any pause or API
            // call (a link refresh), so a download can never wait on itself.
            let permit = self.inner.api.transport().limit.acquire().await;
            let mut request = http.get(&url);
            if let Some(range) = state.range_header() {
                request = request.header(RANGE, range);
                if let Some(validator) = state.if_range_header() {
                    request = request.header(IF_RANGE, validator);
                }
            }
            let sent = match idle {
                Some(limit) => match tokio::time::timeout(limit, request.send()).await {
                    Ok(result) => result.map_err(Some),
                    Err(_) => Err(None),
                },
                None => request.send().await.map_err(Some),
            };
            let mut response = match sent {
                Ok(response) => response,
                Err(error) => {
                    let reason = error
                        .as_ref()
                        .map_or_else(|| "no answer in time".to_owned(), describe);
                    tracing::debug!(url = %redacted, %reason, "download request failed; resuming");
                    drop(permit);
                    state.on_interrupted().map_err(failed)?;
                    effects
                        .sleeper()
                        .sleep(state.backoff(effects.random()))
                        .await;
                    continue;
                }
            };
            let head = response_head(response.status().as_u16(), response.headers());
            match state.on_head(&head).map_err(failed)? {
                HeadAction::AlreadyComplete => {
                    progress.observe_finish(observer, effects.now(), &state);
                    return Ok(state.written());
                }
                HeadAction::RefreshLink => {
                    tracing::info!(url = %redacted, status = head.status, "download link expired; asking for a fresh one");
                    drop(permit);
                    url = self.download_url(original).await?;
                    check_refreshed_url(original, &url)?;
                    continue;
                }
                HeadAction::Retry => {
                    tracing::debug!(url = %redacted, status = head.status, "file host failed; retrying");
                    drop(permit);
                    effects
                        .sleeper()
                        .sleep(state.backoff(effects.random()))
                        .await;
                    continue;
                }
                HeadAction::Write { truncate } => {
                    if truncate {
                        tracing::debug!(url = %redacted, "the file host ignored the range; restarting");
                    }
                    sink.prepare(truncate, &state).await?;
                }
            }
            // Stream the body.
            let cut = loop {
                let next = match idle {
                    Some(limit) => match tokio::time::timeout(limit, response.chunk()).await {
                        Ok(result) => result.map_err(Some),
                        Err(_) => Err(None),
                    },
                    None => response.chunk().await.map_err(Some),
                };
                match next {
                    Ok(Some(chunk)) => {
                        state.on_bytes(chunk.len() as u64).map_err(failed)?;
                        sink.write(&chunk).await?;
                        progress.observe_bytes(observer, chunk.len() as u64, effects.now(), &state);
                    }
                    Ok(None) => break None,
                    Err(error) => {
                        break Some(
                            error
                                .as_ref()
                                .map_or_else(|| "no byte in time".to_owned(), describe),
                        );
                    }
                }
            };
            match cut {
                None => match state.on_end().map_err(failed)? {
                    BodyEnd::Complete { bytes } => {
                        progress.observe_finish(observer, effects.now(), &state);
                        return Ok(bytes);
                    }
                    BodyEnd::Resume => {
                        tracing::debug!(url = %redacted, written = state.written(), "body ended early; resuming");
                    }
                },
                Some(reason) => {
                    tracing::debug!(url = %redacted, written = state.written(), %reason, "transfer cut; resuming");
                    state.on_interrupted().map_err(failed)?;
                }
            }
            drop(permit);
            effects
                .sleeper()
                .sleep(state.backoff(effects.random()))
                .await;
        }
    }
}

fn response_head(status: u16, headers: &HeaderMap) -> ResponseHead {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
            .map(str::to_owned)
    };
    ResponseHead {
        status,
        content_length: text(CONTENT_LENGTH).and_then(|value| value.trim().parse().ok()),
        content_range: text(CONTENT_RANGE),
        etag: text(ETAG),
        last_modified: text(LAST_MODIFIED),
    }
}
