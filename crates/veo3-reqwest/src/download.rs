//! Downloads: the client drives the core's [`DownloadState`] and only moves bytes.
//!
//! Bytes go to `<file>.part` through a fixed-size buffer (memory stays flat whatever the file
//! size) and the file gets its final name by an atomic rename only once the state machine says
//! the body is complete and its length checks out. Requests to the file host carry no
//! `Authorization` header: the key is added per API request, never to the HTTP client.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, RANGE};
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufWriter};
use veo3_core::download::{
    BodyEnd, DownloadError, DownloadState, HeadAction, ResponseHead, redact_url,
};
use veo3_core::{Error, Event, Observer, Veo3Api};

use crate::Client;
use crate::transport::describe;

/// Size of the write buffer between the network and the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// The least time between two [`Event::DownloadProgress`] events.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

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
    File(BufWriter<File>),
    Writer(&'a mut W),
}

impl<W: AsyncWrite + Unpin + Send + ?Sized> Sink<'_, W> {
    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::File(file) => file.write_all(bytes).await,
            Self::Writer(writer) => writer.write_all(bytes).await,
        }
    }

    /// Empties what was written, for a server that sent the whole file instead of a range.
    async fn rewind(&mut self) -> Result<(), Error> {
        match self {
            Self::File(file) => {
                let rewind = async {
                    file.flush().await?;
                    file.get_mut().set_len(0).await?;
                    file.get_mut().rewind().await?;
                    Ok::<_, io::Error>(())
                };
                rewind
                    .await
                    .map_err(|source| Error::io("emptying the partial download", source))
            }
            Self::Writer(_) => Err(Error::invalid_input(
                "the file host ignored a range request and sent the whole file again, \
                 but a writer cannot be rewound",
            )),
        }
    }

    async fn finish(&mut self) -> io::Result<()> {
        match self {
            Self::File(file) => {
                file.flush().await?;
                file.get_mut().sync_all().await
            }
            Self::Writer(writer) => writer.flush().await,
        }
    }
}

/// Emits rate-limited progress events.
struct Progress<'a> {
    observer: &'a Observer,
    started: Instant,
    last: Option<Instant>,
    received: u64,
}

impl<'a> Progress<'a> {
    fn new(observer: &'a Observer) -> Self {
        Self {
            observer,
            started: Instant::now(),
            last: None,
            received: 0,
        }
    }

    fn on_bytes(&mut self, bytes: u64, state: &DownloadState) {
        self.received += bytes;
        if !self.observer.is_active() {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < PROGRESS_EVERY)
        {
            return;
        }
        self.last = Some(now);
        self.emit(state, now);
    }

    fn emit(&self, state: &DownloadState, now: Instant) {
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            (self.received as f64 / elapsed) as u64
        } else {
            0
        };
        self.observer.emit(&Event::download_progress(
            state.written(),
            state.total(),
            rate,
        ));
    }

    fn finish(&self, state: &DownloadState) {
        if self.observer.is_active() {
            let now = Instant::now();
            self.emit(state, now);
            self.observer.emit(&Event::download_finished(
                state.written(),
                now.duration_since(self.started),
            ));
        }
    }
}

impl Client {
    /// Downloads `url` (a result file) to `path`.
    ///
    /// Bytes go to `<path>.part`, which is renamed to `path` only when the body is complete
    /// and its length matches what the server announced; on failure the partial file is
    /// removed, and so it is when the future is dropped before it finishes (a timeout, a
    /// `select!`, Ctrl-C). A cut transfer resumes with `Range` (up to the
    /// [`DownloadPolicy`](veo3_core::download::DownloadPolicy)'s resumes); an expired link
    /// (401/403/404/410) is replaced once with a fresh one from the download-url endpoint.
    /// The request never carries the API key. Progress goes to the observer.
    pub async fn download(&self, url: &str, path: impl AsRef<Path>) -> Result<Downloaded, Error> {
        check_url(url)?;
        let path = path.as_ref();
        let part = part_path(path)?;
        let file = File::create(&part)
            .await
            .map_err(|source| Error::io(format!("creating {}", part.display()), source))?;
        // Declared before the sink, so dropped after it: the file is closed when it goes.
        let mut guard = PartGuard(Some(part.clone()));
        let mut sink: Sink<'_, tokio::io::Sink> =
            Sink::File(BufWriter::with_capacity(WRITE_BUFFER, file));
        let result = self.transfer(url, &mut sink).await;
        let finished = match result {
            Ok(bytes) => sink
                .finish()
                .await
                .map(|()| bytes)
                .map_err(|source| Error::io(format!("writing {}", part.display()), source)),
            Err(error) => Err(error),
        };
        drop(sink);
        match finished {
            Ok(bytes) => {
                guard.disarm();
                tokio::fs::rename(&part, path).await.map_err(|source| {
                    Error::io(
                        format!("renaming {} to {}", part.display(), path.display()),
                        source,
                    )
                })?;
                tracing::info!(url = %redact_url(url), path = %path.display(), bytes, "downloaded");
                Ok(Downloaded {
                    path: path.to_owned(),
                    bytes,
                })
            }
            // Nothing half-written is left behind (the guard removes it); a later call
            // starts afresh.
            Err(error) => Err(error),
        }
    }

    /// Downloads `url` into `writer`, returning the bytes written. Resumes after cuts like
    /// [`Client::download`]; if the server then ignores the range and resends the whole file,
    /// the download fails (a writer cannot be rewound). The writer is flushed at the end.
    pub async fn download_to_writer<W>(&self, url: &str, writer: &mut W) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let mut sink = Sink::Writer(writer);
        let bytes = self.transfer(url, &mut sink).await?;
        sink.finish()
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
    async fn transfer<W>(&self, original: &str, sink: &mut Sink<'_, W>) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        check_url(original)?;
        let failed = |reason: DownloadError| Error::download(original, reason);
        let http = &self.inner.api.transport().http;
        let effects = self.effects();
        let idle = self.inner.download_idle_timeout;
        let mut state = DownloadState::new(self.inner.download_policy.clone());
        let mut progress = Progress::new(effects.observer());
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
                    progress.finish(&state);
                    return Ok(state.written());
                }
                HeadAction::RefreshLink => {
                    tracing::info!(url = %redacted, status = head.status, "download link expired; asking for a fresh one");
                    drop(permit);
                    url = self.download_url(original).await?;
                    check_url(&url)?;
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
                        sink.rewind().await?;
                    }
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
                        sink.write(&chunk)
                            .await
                            .map_err(|source| Error::io("writing the download", source))?;
                        progress.on_bytes(chunk.len() as u64, &state);
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
                        progress.finish(&state);
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

/// Refuses what cannot be downloaded before any request: not a URL, or not http(s).
fn check_url(url: &str) -> Result<(), Error> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        Ok(parsed) => Err(Error::invalid_input(format!(
            "cannot download {}: only http and https URLs are supported, not {:?}",
            redact_url(url),
            parsed.scheme()
        ))),
        Err(error) => Err(Error::invalid_input(format!(
            "cannot download {}: not a URL ({error})",
            redact_url(url)
        ))),
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
    }
}

/// Removes a `.part` file when dropped, unless disarmed: whether the download fails or its
/// future is dropped half-way, nothing is left behind. (One `unlink`, so doing it
/// synchronously in `drop` does not hold up the runtime.)
struct PartGuard(Option<PathBuf>);

impl PartGuard {
    /// The file is complete: it is renamed, not removed.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        if let Some(part) = self.0.take() {
            let _ = std::fs::remove_file(part);
        }
    }
}

/// `<path>.part`, next to `path`.
fn part_path(path: &Path) -> Result<PathBuf, Error> {
    let Some(name) = path.file_name() else {
        return Err(Error::invalid_input(format!(
            "{} is not a file path",
            path.display()
        )));
    };
    let mut part = name.to_owned();
    part.push(".part");
    Ok(path.with_file_name(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_downloaded() {
        assert!(check_url("https://tempfile.aiquickdraw.com/v/a.mp4?sig=1").is_ok());
        assert!(check_url("http://127.0.0.1:9/big/10").is_ok());
        for bad in ["", "not a url", "file:///etc/passwd", "ftp://host/a.mp4"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let error = check_url("ftp://host/a.mp4?token=s3cr3t").unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"));
    }

    #[test]
    fn part_files_sit_next_to_the_target() {
        assert_eq!(
            part_path(Path::new("/tmp/a/video.mp4")).unwrap(),
            Path::new("/tmp/a/video.mp4.part")
        );
        assert!(part_path(Path::new("/")).is_err());
    }
}
