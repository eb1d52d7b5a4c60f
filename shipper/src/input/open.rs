//! Opening a log file without trusting its name.
//!
//! Every container that writes the log directory can put something else under a watched
//! name: a FIFO (a blocking `open(2)` of it hangs the reading thread, and with it every
//! file, for good), a symbolic link to a secret or to `/proc/self/status` (read again and
//! again), a device. So a file is opened with `O_NONBLOCK | O_NOFOLLOW | O_NOCTTY` (an open
//! that cannot block, and cannot follow a link the last component was swapped for), and
//! what it is is decided from the descriptor (`fstat`, `fstatfs`): only a regular file, not
//! on a pseudo filesystem, is read. A look at the path before the open only spares the
//! open of what is plainly not a log; it never decides that something is one, because the
//! name can be swapped between the look and the open.
//!
//! Symbolic links are not followed unless [`OpenPolicy`] says so; then only a link whose
//! target lies inside one of the watched directories (kubelet's `/var/log/containers/*.log`
//! links into `/var/log/pods`), checked again on the descriptor's own path after the open.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a name under the globs is not read. Each holds until the name changes; none is an
/// error of the shipper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("not a regular file but a {0}; not read")]
    NotRegular(&'static str),
    #[error("a symbolic link; not followed (SHIPPER_FOLLOW_SYMLINKS follows links that stay inside the watched directories)")]
    Link,
    #[error("a symbolic link to {0}, outside the watched directories; not followed")]
    OutsideRoots(PathBuf),
    #[error(
        "on a pseudo filesystem (procfs, sysfs, ...), whose files change on every read; not read"
    )]
    PseudoFilesystem,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// How names under the globs are opened: whether links are followed, and into where.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenPolicy {
    /// The directories links may point into (canonical paths); `None`: links are refused.
    link_roots: Option<Arc<[PathBuf]>>,
}

impl OpenPolicy {
    /// Links are refused.
    pub(crate) fn no_links() -> OpenPolicy {
        OpenPolicy::default()
    }

    /// Links are followed when their target lies inside one of `roots` (the watched
    /// directories; those that do not exist yet are taken as written).
    pub(crate) fn links_within(roots: &[PathBuf]) -> OpenPolicy {
        let roots: Vec<PathBuf> = roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        OpenPolicy {
            link_roots: Some(roots.into()),
        }
    }

    /// What `path` is now, without opening it: the metadata of a regular file (of a link's
    /// target, for a link that may be followed). Spares the open of what is plainly not a
    /// log; [`OpenPolicy::open`] decides again from the descriptor.
    pub(crate) fn look(&self, path: &Path) -> Result<Metadata, OpenError> {
        let meta = std::fs::symlink_metadata(path)?;
        let meta = if meta.file_type().is_symlink() {
            let target = self.link_target(path)?;
            std::fs::metadata(target)?
        } else {
            meta
        };
        refuse_unless_regular(&meta)?;
        Ok(meta)
    }

    /// Opens `path` for reading, never blocking and never following a link the policy does
    /// not allow, and checks from the descriptor that it is a regular file on a real
    /// filesystem. Returns the file and its metadata (taken from the descriptor).
    pub(crate) fn open(&self, path: &Path) -> Result<(File, Metadata), OpenError> {
        let (file, is_link) = match open_nofollow(path) {
            Ok(file) => (file, false),
            // The last component is a link: refused, or opened where it points.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                let target = self.link_target(path)?;
                match open_nofollow(&target) {
                    Ok(file) => (file, true),
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                        return Err(Refused::Link.into())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata()?;
        refuse_unless_regular(&meta)?;
        if on_pseudo_filesystem(&file)? {
            return Err(Refused::PseudoFilesystem.into());
        }
        if is_link {
            // A directory on the way may have been swapped for a link since the target was
            // resolved: the descriptor's own path is what was opened.
            if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
                self.check_inside(&real)?;
            }
        }
        Ok((file, meta))
    }

    /// The canonical target of the link `path`, if links may be followed there.
    fn link_target(&self, path: &Path) -> Result<PathBuf, OpenError> {
        if self.link_roots.is_none() {
            return Err(Refused::Link.into());
        }
        let target = std::fs::canonicalize(path)?;
        self.check_inside(&target)?;
        Ok(target)
    }

    fn check_inside(&self, target: &Path) -> Result<(), Refused> {
        let roots = self.link_roots.as_deref().unwrap_or_default();
        if roots.iter().any(|root| target.starts_with(root)) {
            Ok(())
        } else {
            Err(Refused::OutsideRoots(target.to_path_buf()))
        }
    }
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for
        // one; on a regular file it changes nothing. O_NOCTTY: a terminal never becomes the
        // controlling one. (std adds O_CLOEXEC.)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

fn refuse_unless_regular(meta: &Metadata) -> Result<(), Refused> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    };
    Err(Refused::NotRegular(kind))
}

/// Is `file` on procfs, sysfs or another kernel pseudo filesystem, whose "regular files"
/// are generated on each read (their size says nothing, their content never ends the
/// same way)? `fstatfs` through `libc`: one call, not worth a crate.
fn on_pseudo_filesystem(file: &File) -> io::Result<bool> {
    // Magic numbers from linux/magic.h.
    const PSEUDO: [i64; 8] = [
        0x9fa0,      // PROC_SUPER_MAGIC
        0x6265_6572, // SYSFS_MAGIC
        0x6462_6720, // DEBUGFS_MAGIC
        0x7472_6163, // TRACEFS_MAGIC
        0x0027_e0eb, // CGROUP_SUPER_MAGIC
        0x6367_7270, // CGROUP2_SUPER_MAGIC
        0x7363_6673, // SECURITYFS_MAGIC
        0xcafe_4a11, // BPF_FS_MAGIC
    ];
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes a statfs struct for a valid descriptor, which `file` holds.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatfs returned 0, so the struct is filled in.
    #[allow(clippy::unnecessary_cast)] // f_type is an i32 or an i64, by target
    let f_type = unsafe { stat.assume_init() }.f_type as i64;
    Ok(PSEUDO.contains(&f_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn refused(r: Result<(File, Metadata), OpenError>) -> Refused {
        match r {
            Err(OpenError::Refused(r)) => r,
            Err(OpenError::Io(e)) => panic!("an I/O error, not a refusal: {e}"),
            Ok(_) => panic!("opened"),
        }
    }

    #[test]
    fn a_regular_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"x\n").unwrap();
        let (_, meta) = OpenPolicy::no_links().open(&path).unwrap();
        assert_eq!(meta.len(), 2);
        assert!(OpenPolicy::no_links().look(&path).is_ok());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would never return and this test would hang.
        assert_eq!(
            refused(OpenPolicy::no_links().open(&path)),
            Refused::NotRegular("FIFO")
        );
        assert!(matches!(
            OpenPolicy::no_links().look(&path),
            Err(OpenError::Refused(Refused::NotRegular("FIFO")))
        ));
    }

    #[test]
    fn links_are_refused_by_default_and_followed_only_inside_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"password\n").unwrap();
        let inside = dir.path().join("pods");
        std::fs::create_dir(&inside).unwrap();
        let real = inside.join("0.log");
        std::fs::write(&real, b"line\n").unwrap();
        let logs = dir.path().join("containers");
        std::fs::create_dir(&logs).unwrap();
        let to_secret = logs.join("secret.log");
        symlink(&secret, &to_secret).unwrap();
        let to_pod = logs.join("pod.log");
        symlink(&real, &to_pod).unwrap();

        let none = OpenPolicy::no_links();
        assert_eq!(refused(none.open(&to_pod)), Refused::Link);
        assert_eq!(refused(none.open(&to_secret)), Refused::Link);

        let within = OpenPolicy::links_within(&[logs.clone(), inside.clone()]);
        let (_, meta) = within.open(&to_pod).unwrap();
        assert_eq!(meta.len(), 5);
        assert!(within.look(&to_pod).is_ok());
        assert!(matches!(
            refused(within.open(&to_secret)),
            Refused::OutsideRoots(_)
        ));
        let proc_link = logs.join("status.log");
        symlink("/proc/self/status", &proc_link).unwrap();
        assert!(matches!(
            refused(within.open(&proc_link)),
            Refused::OutsideRoots(_)
        ));
    }

    #[test]
    fn a_file_on_procfs_is_refused_even_when_named_directly() {
        assert_eq!(
            refused(OpenPolicy::no_links().open(Path::new("/proc/self/status"))),
            Refused::PseudoFilesystem
        );
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            refused(OpenPolicy::no_links().open(dir.path())),
            Refused::NotRegular("directory")
        );
    }
}
