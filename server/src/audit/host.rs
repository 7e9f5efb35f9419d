//! The audit's only door to the machine (commands, files, the Unix socket, the clock), behind a
//! trait so every check can be driven by recorded outputs in tests.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Cron's and sudo's PATH differ and may lack the sbin folders where `sshd`, `ufw` and
/// `cryptsetup` live; a fixed root PATH also keeps a hostile PATH from choosing our programs.
pub const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A wedged fail2ban or D-Bus must cost one check, not the whole weekly run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The readiness answer is a few bytes; anything longer is not Mallard.
const HTTP_MAX_BYTES: u64 = 64 * 1024;

/// What a finished command left behind. `code` is `None` when a signal ended it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A path's own metadata; symbolic links are not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileMeta {
    pub is_file: bool,
    pub is_dir: bool,
    pub is_symlink: bool,
    /// Permission bits only (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub modified: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Why the host could not answer. Messages are complete sentences for a check's detail, so
/// the underlying error is part of the message rather than a `source`.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("`{0}` is not installed (not in the PATH)")]
    CommandNotFound(String),
    #[error("`{0}` did not finish within {secs} s", secs = COMMAND_TIMEOUT.as_secs())]
    Timeout(String),
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("unreadable HTTP response: {0}")]
    Http(String),
}

impl HostError {
    fn io(context: impl Into<String>, path: &Path, error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound(path.to_path_buf())
        } else {
            Self::Io {
                context: context.into(),
                error,
            }
        }
    }
}

/// Everything a check may ask of the machine.
pub trait Host {
    /// Runs `program` (looked up in [`COMMAND_PATH`], C locale) and waits for it.
    fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput, HostError>;
    fn read_file(&self, path: &Path) -> Result<String, HostError>;
    fn metadata(&self, path: &Path) -> Result<FileMeta, HostError>;
    fn read_link(&self, path: &Path) -> Result<PathBuf, HostError>;
    /// Entry names, sorted.
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError>;
    /// `GET path` over HTTP/1.1 on a Unix socket.
    fn http_get_unix(&self, socket: &Path, path: &str) -> Result<HttpResponse, HostError>;
    fn now(&self) -> SystemTime;
}

/// The machine the binary runs on.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

impl Host for SystemHost {
    fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput, HostError> {
        let command_line = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let spawned = Command::new(program)
            .args(args)
            .env("PATH", COMMAND_PATH)
            // Parsers below match English output; ufw, for one, is translated.
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env_remove("LANGUAGE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(HostError::CommandNotFound(program.to_string()));
            }
            Err(error) => {
                return Err(HostError::Io {
                    context: format!("cannot run `{command_line}`"),
                    error,
                });
            }
        };
        // Pipes are drained on threads so a chatty command cannot block on a full pipe while
        // we wait for it to exit.
        let (sender, receiver) = mpsc::channel();
        let stdout = drain(child.stdout.take(), 0, sender.clone());
        let stderr = drain(child.stderr.take(), 1, sender);
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HostError::Timeout(command_line));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => {
                    return Err(HostError::Io {
                        context: format!("cannot wait for `{command_line}`"),
                        error,
                    });
                }
            }
        };
        let mut output = CommandOutput {
            code: status.code(),
            ..CommandOutput::default()
        };
        // A grandchild may keep a pipe open after the command exited; do not wait for it.
        let expected = usize::from(stdout) + usize::from(stderr);
        for _ in 0..expected {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            match receiver.recv_timeout(wait) {
                Ok((0, bytes)) => output.stdout = String::from_utf8_lossy(&bytes).into_owned(),
                Ok((_, bytes)) => output.stderr = String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => break,
            }
        }
        Ok(output)
    }

    fn read_file(&self, path: &Path) -> Result<String, HostError> {
        std::fs::read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|error| HostError::io(format!("cannot read {}", path.display()), path, error))
    }

    fn metadata(&self, path: &Path) -> Result<FileMeta, HostError> {
        let meta = std::fs::symlink_metadata(path).map_err(|error| {
            HostError::io(format!("cannot stat {}", path.display()), path, error)
        })?;
        Ok(FileMeta {
            is_file: meta.is_file(),
            is_dir: meta.is_dir(),
            is_symlink: meta.file_type().is_symlink(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            modified: meta.modified().ok(),
        })
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf, HostError> {
        std::fs::read_link(path).map_err(|error| {
            HostError::io(format!("cannot read link {}", path.display()), path, error)
        })
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        let context = || format!("cannot list {}", path.display());
        let entries =
            std::fs::read_dir(path).map_err(|error| HostError::io(context(), path, error))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| HostError::io(context(), path, error))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn http_get_unix(&self, socket: &Path, path: &str) -> Result<HttpResponse, HostError> {
        let context = || format!("GET {path} on {}", socket.display());
        let io = |error| HostError::io(context(), socket, error);
        let mut stream = UnixStream::connect(socket).map_err(io)?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: mallard-metrics-audit\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream
            .take(HTTP_MAX_BYTES)
            .read_to_end(&mut raw)
            .map_err(io)?;
        super::http::parse_response(&raw)
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Reads a pipe to its end on a thread and sends `(tag, bytes)`; false when there is no pipe.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    tag: u8,
    sender: mpsc::Sender<(u8, Vec<u8>)>,
) -> bool {
    let Some(mut pipe) = pipe else { return false };
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = sender.send((tag, bytes));
    });
    true
}
