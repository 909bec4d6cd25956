//! Where a download lands: the target checks, the `.part` file and its lock, the resume
//! sidecar, and durability.
//!
//! These are file-system rules, the same for the async and the blocking client, so they live
//! here once and the clients only move bytes between the network and the [`File`] this module
//! opens. Every operation is a handful of system calls (open, lock, a few hundred bytes of
//! sidecar, fsync, rename), so the async client may call them directly or, for the fsyncs, on
//! a blocking thread.
//!
//! The rules:
//! - A target is checked before anything is sent: not a folder, no trailing slash, its folder
//!   exists and is a folder, the folder can be written (probed with a file created and removed
//!   at once), `<name>.part` is not a folder, and an existing file is replaced only when the
//!   caller asked for it ([`DownloadPolicy::overwrite`](super::DownloadPolicy::overwrite)).
//! - Bytes go to `<name>.part`, held under an exclusive advisory lock for as long as the
//!   download runs: a second writer gets [`TargetProblem::Busy`] instead of truncating the
//!   first one's bytes.
//! - Once the file host names a validator (a strong `ETag`, or `Last-Modified` with the
//!   length), a sidecar `<name>.part.json` records it with the source (scheme, host and path;
//!   never the query, where signed links keep their tokens). A later process that finds both
//!   resumes with `Range` and `If-Range`; a server that answers 200 starts the file over.
//! - A finished file is fsynced, renamed while the lock is still held, and its folder is
//!   fsynced. A failed rename removes the `.part`.
//! - A download that stops early keeps its `.part` only when the sidecar makes it resumable
//!   (dropped half-way, or failed in transit); otherwise the `.part` is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{DownloadState, Validator, redact_url};
use crate::Error;

/// Why a path cannot receive a download.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetProblem {
    /// The path is empty, names a folder that exists, or has no file name (`/`, `..`).
    NotAFile,
    /// The path ends with a slash: it names a folder, even one that does not exist yet.
    TrailingSlash,
    /// The folder the file would go in does not exist.
    MissingFolder {
        /// That folder.
        folder: PathBuf,
    },
    /// Something on the way to the file is a file, not a folder (`existing.mp4/x.mp4`).
    ParentIsFile {
        /// That file.
        file: PathBuf,
    },
    /// A file is already there and overwriting was not asked for.
    Exists,
    /// `<name>.part`, where the bytes go first, is a folder.
    PartIsFolder {
        /// The `.part` path.
        part: PathBuf,
    },
    /// Another download to the same path holds its `.part`.
    Busy {
        /// The locked `.part` path.
        part: PathBuf,
    },
    /// The folder cannot be written: no permission, a read-only file system, ...
    NotWritable {
        /// The folder.
        folder: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

impl TargetProblem {
    /// The sentence for `path`, as [`Error::Target`] displays it.
    pub fn message(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            Self::NotAFile if path.to_string().is_empty() => "an empty path is not a file".into(),
            Self::NotAFile => format!("{path} is a folder, not a file"),
            Self::TrailingSlash => format!(
                "{path} ends with a slash, so it names a folder; give a file name (for example {path}video.mp4)"
            ),
            Self::MissingFolder { folder } => format!(
                "cannot save to {path}: folder {} does not exist",
                folder.display()
            ),
            Self::ParentIsFile { file } => format!(
                "cannot save to {path}: {} is a file, not a folder",
                file.display()
            ),
            Self::Exists => format!("{path} already exists; it is replaced only on request"),
            Self::PartIsFolder { part } => format!(
                "cannot save to {path}: {}, where the download is written first, is a folder",
                part.display()
            ),
            Self::Busy { part } => format!(
                "another download to {path} is in progress ({} is locked)",
                part.display()
            ),
            Self::NotWritable { folder, reason } => format!(
                "cannot save to {path}: folder {} cannot be written ({reason})",
                folder.display()
            ),
        }
    }
}

/// Checks, before anything is sent or billed, that `path` can receive a download: the checks
/// of the module's rules, with the folder's writability probed by creating and removing a
/// file in it, and a `.part` in use by another download reported as [`TargetProblem::Busy`].
/// Nothing is left behind.
///
/// ```
/// use veo3_core::download::{TargetProblem, check_target};
/// use veo3_core::Error;
///
/// let dir = std::env::temp_dir();
/// assert!(check_target(&dir.join("veo3-doc-new.mp4"), false).is_ok());
/// let error = check_target(&dir, false).unwrap_err();
/// assert!(matches!(error, Error::Target { problem: TargetProblem::NotAFile, .. }));
/// ```
pub fn check_target(path: &Path, overwrite: bool) -> Result<(), Error> {
    let names = Names::of(path, overwrite)?;
    match OpenOptions::new().write(true).open(&names.part) {
        Ok(part) => {
            // An existing `.part`: only its lock matters (it is released when `part` closes).
            if let Err(fs::TryLockError::WouldBlock) = part.try_lock() {
                return Err(names.problem(TargetProblem::Busy {
                    part: names.part.clone(),
                }));
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(names.not_writable(&error)),
    }
    let probe = names.folder.join(format!(
        ".{}.veo3-probe-{}",
        names.file_name,
        std::process::id()
    ));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(names.not_writable(&error)),
    }
}

/// `<path>.part`, beside the final file so the rename never crosses file systems.
///
/// ```
/// use std::path::Path;
/// assert_eq!(
///     veo3_core::download::part_path(Path::new("out/video.mp4")).unwrap(),
///     Path::new("out/video.mp4.part")
/// );
/// ```
pub fn part_path(path: &Path) -> Result<PathBuf, Error> {
    let Some(name) = path.file_name().filter(|_| !ends_with_slash(path)) else {
        return Err(Error::target(path, TargetProblem::NotAFile));
    };
    let mut part = name.to_os_string();
    part.push(".part");
    Ok(path.with_file_name(part))
}

/// The `.part` of one download, open and locked, with its resume sidecar.
///
/// [`PartFile::open`] hands back the [`File`] to write to (the lock lives as long as that
/// file stays open); [`PartFile::commit`] takes it back to make it durable and give it its
/// name. Dropped without [`PartFile::commit`] (a future dropped half-way, a panic), the
/// `.part` stays only if it is resumable; [`PartFile::fail`] decides the same for an error.
#[derive(Debug)]
pub struct PartFile {
    target: PathBuf,
    part: PathBuf,
    sidecar: PathBuf,
    folder: PathBuf,
    source: String,
    resume: Option<Resume>,
    recorded: Option<Validator>,
    settled: bool,
}

/// What a `.part` left by an earlier download holds, when it can be continued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// Bytes in the `.part`.
    pub written: u64,
    /// The validator of those bytes, sent as `If-Range`.
    pub validator: Validator,
    /// The file's full length, when it was announced.
    pub total: Option<u64>,
}

/// The sidecar's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sidecar {
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
}

impl PartFile {
    /// Checks `path` (as [`check_target`] does, without the probe), opens and locks
    /// `<path>.part`, and reads its sidecar: when it records the same source and the `.part`
    /// fits the recorded length, the returned file is positioned at its end and
    /// [`PartFile::state`] resumes there; otherwise the `.part` is emptied.
    pub fn open(path: &Path, url: &str, overwrite: bool) -> Result<(Self, File), Error> {
        let names = Names::of(path, overwrite)?;
        let file = names.open_locked()?;
        let sidecar = sidecar_path(&names.part);
        let source = redact_url(url);
        let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let resume = fs::read(&sidecar)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Sidecar>(&bytes).ok())
            .filter(|recorded| recorded.source == source && length > 0)
            .filter(|recorded| recorded.length.is_none_or(|total| length <= total))
            .and_then(|recorded| {
                let validator = match (recorded.etag, recorded.last_modified, recorded.length) {
                    (Some(etag), _, _) => Validator::ETag(etag),
                    (None, Some(date), Some(length)) => Validator::LastModified { date, length },
                    _ => return None,
                };
                Some(Resume {
                    written: length,
                    validator,
                    total: recorded.length,
                })
            });
        let mut file = file;
        let positioned = match &resume {
            Some(resume) => file.seek(SeekFrom::Start(resume.written)).map(drop),
            None => {
                let _ = fs::remove_file(&sidecar);
                file.set_len(0)
            }
        };
        positioned
            .map_err(|error| Error::io(format!("preparing {}", names.part.display()), error))?;
        if let Some(resume) = &resume {
            tracing::info!(part = %names.part.display(), bytes = resume.written, "resuming an earlier download");
        }
        let recorded = resume.as_ref().map(|resume| resume.validator.clone());
        Ok((
            Self {
                target: path.to_owned(),
                part: names.part,
                sidecar,
                folder: names.folder,
                source,
                resume,
                recorded,
                settled: false,
            },
            file,
        ))
    }

    /// The `.part` path.
    pub fn part(&self) -> &Path {
        &self.part
    }

    /// What an earlier download left to continue, if anything.
    pub fn resume(&self) -> Option<&Resume> {
        self.resume.as_ref()
    }

    /// The download state to start from: fresh, or resuming the `.part`'s bytes.
    pub fn state(&self, policy: super::DownloadPolicy) -> DownloadState {
        match &self.resume {
            Some(resume) => DownloadState::resuming(policy, resume),
            None => DownloadState::new(policy),
        }
    }

    /// Records the validator of the bytes the `.part` is about to hold (call after every head
    /// that says to write, before writing its body). Without a validator, an earlier sidecar
    /// is removed: those bytes could not be proved to continue.
    pub fn record(&mut self, state: &DownloadState) -> Result<(), Error> {
        let validator = state.validator().cloned();
        if validator == self.recorded {
            return Ok(());
        }
        self.recorded = None;
        let Some(validator) = validator else {
            let _ = fs::remove_file(&self.sidecar);
            return Ok(());
        };
        let (etag, last_modified) = match &validator {
            Validator::ETag(etag) => (Some(etag.clone()), None),
            Validator::LastModified { date, .. } => (None, Some(date.clone())),
        };
        let sidecar = Sidecar {
            source: self.source.clone(),
            etag,
            last_modified,
            length: state.total(),
        };
        let bytes = serde_json::to_vec(&sidecar).unwrap_or_default();
        fs::write(&self.sidecar, bytes)
            .map_err(|error| Error::io(format!("writing {}", self.sidecar.display()), error))?;
        self.recorded = Some(validator);
        Ok(())
    }

    /// Makes the complete `.part` durable (fsync), removes the sidecar, renames the `.part` to
    /// the target while its lock is still held, and fsyncs the folder so the rename survives a
    /// crash. A failed rename removes the `.part`.
    ///
    /// The sidecar goes first: a process killed between the two steps leaves a `.part` that
    /// the next download starts again (nothing proves its bytes), never a sidecar beside a
    /// finished file, which nothing would ever remove.
    pub fn commit(mut self, file: File) -> Result<(), Error> {
        self.settled = true;
        let result = file
            .sync_all()
            .map_err(|error| Error::io(format!("syncing {}", self.part.display()), error))
            .and_then(|()| {
                let _ = fs::remove_file(&self.sidecar);
                fs::rename(&self.part, &self.target).map_err(|error| {
                    Error::io(
                        format!(
                            "renaming {} to {}",
                            self.part.display(),
                            self.target.display()
                        ),
                        error,
                    )
                })
            });
        drop(file);
        if result.is_err() {
            let _ = fs::remove_file(&self.sidecar);
            let _ = fs::remove_file(&self.part);
            return result;
        }
        // Directories cannot be opened for syncing everywhere; where they can, this makes the
        // rename itself durable.
        if let Ok(folder) = File::open(&self.folder) {
            let _ = folder.sync_all();
        }
        Ok(())
    }

    /// The download failed with `error`: the `.part` stays for a later attempt when it is
    /// resumable and the failure was in transit ([`Error::is_retryable`]); otherwise it goes.
    /// Returns `error`.
    pub fn fail(mut self, error: Error) -> Error {
        self.settled = true;
        if !(self.recorded.is_some() && error.is_retryable()) {
            self.remove();
        }
        error
    }

    fn remove(&self) {
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(&self.sidecar);
    }
}

impl Drop for PartFile {
    /// Dropped half-way (the future was dropped, the thread panicked): a resumable `.part`
    /// stays for the next attempt, anything else is removed. One or two `unlink`s, cheap
    /// enough for any context.
    fn drop(&mut self) {
        if !self.settled && self.recorded.is_none() {
            self.remove();
        }
    }
}

/// `<name>.part.json`, the sidecar of `<name>.part`.
fn sidecar_path(part: &Path) -> PathBuf {
    let mut name = part.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn ends_with_slash(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    bytes.last() == Some(&b'/') || (cfg!(windows) && bytes.last() == Some(&b'\\'))
}

/// The paths of one target, checked.
struct Names<'a> {
    path: &'a Path,
    part: PathBuf,
    folder: PathBuf,
    file_name: String,
}

impl<'a> Names<'a> {
    /// The checks that need no writing.
    fn of(path: &'a Path, overwrite: bool) -> Result<Self, Error> {
        let fail = |problem| Err(Error::target(path, problem));
        if path.as_os_str().is_empty() {
            return fail(TargetProblem::NotAFile);
        }
        if ends_with_slash(path) {
            return fail(TargetProblem::TrailingSlash);
        }
        let part = part_path(path)?;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&folder) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return fail(TargetProblem::ParentIsFile { file: folder }),
            Err(error) if is_missing(&error) => return fail(missing(&folder)),
            Err(error) => {
                return fail(TargetProblem::NotWritable {
                    folder,
                    reason: error.to_string(),
                });
            }
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => return fail(TargetProblem::NotAFile),
            Ok(_) if !overwrite => return fail(TargetProblem::Exists),
            _ => {}
        }
        if fs::metadata(&part).is_ok_and(|meta| meta.is_dir()) {
            return fail(TargetProblem::PartIsFolder { part });
        }
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            path,
            part,
            folder,
            file_name,
        })
    }

    fn problem(&self, problem: TargetProblem) -> Error {
        Error::target(self.path, problem)
    }

    fn not_writable(&self, error: &io::Error) -> Error {
        if error.kind() == io::ErrorKind::IsADirectory {
            return self.problem(TargetProblem::PartIsFolder {
                part: self.part.clone(),
            });
        }
        self.problem(TargetProblem::NotWritable {
            folder: self.folder.clone(),
            reason: error.to_string(),
        })
    }

    /// Opens `<name>.part` without truncating it and takes its lock. The lock belongs to the
    /// open file; if the path was replaced between the open and the lock (a writer that just
    /// finished renamed or removed it), the open is repeated on the new file.
    fn open_locked(&self) -> Result<File, Error> {
        for _ in 0..3 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.part)
                .map_err(|error| self.not_writable(&error))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(self.problem(TargetProblem::Busy {
                        part: self.part.clone(),
                    }));
                }
                Err(fs::TryLockError::Error(error)) => {
                    return Err(Error::io(format!("locking {}", self.part.display()), error));
                }
            }
            if same_file(&file, &self.part) {
                return Ok(file);
            }
        }
        Err(self.problem(TargetProblem::Busy {
            part: self.part.clone(),
        }))
    }
}

/// Whether the open `file` is still the one at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The problem with a folder that cannot be found: the nearest ancestor that exists as a file
/// is named (`existing.mp4/x.mp4`), otherwise the folder is missing.
fn missing(folder: &Path) -> TargetProblem {
    for ancestor in folder.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        if let Ok(meta) = fs::metadata(ancestor) {
            if !meta.is_dir() {
                return TargetProblem::ParentIsFile {
                    file: ancestor.to_owned(),
                };
            }
            break;
        }
    }
    TargetProblem::MissingFolder {
        folder: folder.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::{DownloadPolicy, ResponseHead};

    fn head_with_etag() -> ResponseHead {
        ResponseHead {
            status: 200,
            content_length: Some(10),
            etag: Some("\"v1\"".into()),
            ..ResponseHead::default()
        }
    }

    #[test]
    fn a_part_without_a_validator_is_removed_when_dropped_and_one_with_it_stays() {
        let dir = tempfile_dir();
        let path = dir.join("a.mp4");
        let (part, file) = PartFile::open(&path, "http://h/a.mp4", false).unwrap();
        drop(file);
        drop(part);
        assert!(!dir.join("a.mp4.part").exists());

        let (mut part, file) = PartFile::open(&path, "http://h/a.mp4?sig=1", false).unwrap();
        let mut state = part.state(DownloadPolicy::default());
        state.on_head(&head_with_etag()).unwrap();
        part.record(&state).unwrap();
        std::fs::write(dir.join("a.mp4.part"), b"12345").unwrap();
        drop(file);
        drop(part);
        let sidecar = std::fs::read_to_string(dir.join("a.mp4.part.json")).unwrap();
        assert!(!sidecar.contains("sig=1"), "no token on disk: {sidecar}");

        // The same source resumes; the state asks for the rest under If-Range.
        let (part, file) = PartFile::open(&path, "http://h/a.mp4?sig=2", false).unwrap();
        let state = part.state(DownloadPolicy::default());
        assert_eq!(state.range_header().as_deref(), Some("bytes=5-"));
        assert_eq!(state.if_range_header(), Some("\"v1\""));
        drop(file);
        drop(part);

        // Another source starts over.
        let (part, file) = PartFile::open(&path, "http://h/b.mp4", false).unwrap();
        assert!(part.resume().is_none());
        assert_eq!(file.metadata().unwrap().len(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn targets_are_checked_before_anything_is_written() {
        let dir = tempfile_dir();
        let problem = |path: &Path, overwrite| match check_target(path, overwrite) {
            Err(Error::Target { problem, .. }) => Some(problem),
            Ok(()) => None,
            Err(other) => panic!("{other}"),
        };
        assert_eq!(problem(&dir.join("new.mp4"), false), None);
        assert_eq!(problem(&dir, false), Some(TargetProblem::NotAFile));
        assert_eq!(problem(Path::new(""), false), Some(TargetProblem::NotAFile));
        let slash = PathBuf::from(format!("{}/", dir.join("newdir").display()));
        assert_eq!(problem(&slash, false), Some(TargetProblem::TrailingSlash));
        std::fs::write(dir.join("old.mp4"), b"x").unwrap();
        assert_eq!(
            problem(&dir.join("old.mp4"), false),
            Some(TargetProblem::Exists)
        );
        assert_eq!(problem(&dir.join("old.mp4"), true), None);
        assert_eq!(
            problem(&dir.join("old.mp4").join("sub").join("x.mp4"), false),
            Some(TargetProblem::ParentIsFile {
                file: dir.join("old.mp4")
            })
        );
        assert_eq!(
            problem(&dir.join("none").join("x.mp4"), false),
            Some(TargetProblem::MissingFolder {
                folder: dir.join("none")
            })
        );
        std::fs::create_dir(dir.join("d.mp4.part")).unwrap();
        assert!(matches!(
            problem(&dir.join("d.mp4"), false),
            Some(TargetProblem::PartIsFolder { .. })
        ));
        let (_part, _file) = PartFile::open(&dir.join("busy.mp4"), "http://h/x", false).unwrap();
        assert!(matches!(
            problem(&dir.join("busy.mp4"), false),
            Some(TargetProblem::Busy { .. })
        ));
        assert!(matches!(
            PartFile::open(&dir.join("busy.mp4"), "http://h/x", false),
            Err(Error::Target {
                problem: TargetProblem::Busy { .. },
                ..
            })
        ));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("probe"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_rename_removes_the_part() {
        let dir = tempfile_dir();
        let path = dir.join("r.mp4");
        let (part, file) = PartFile::open(&path, "http://h/r", false).unwrap();
        // A folder appears under the final name: the rename fails.
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        assert!(part.commit(file).is_err());
        assert!(!dir.join("r.mp4.part").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fresh folder under the system's temporary folder.
    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "veo3-core-target-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
