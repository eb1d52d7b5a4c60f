//! Which files to read: glob patterns, minus exclusions, plus a filesystem watch that says
//! when to look again.
//!
//! Filesystem events make the shipper react within milliseconds, but they are not reliable
//! everywhere (network and overlay filesystems, inotify limits, events lost on overflow), so
//! the globs are also re-evaluated on a fixed interval: events speed things up, the rescan
//! makes sure nothing is missed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PathsError {
    #[error("{pattern:?} is not a valid glob: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("{pattern:?} must be an absolute path")]
    Relative { pattern: String },
}

/// The files matching the include globs and none of the exclude globs.
#[derive(Debug, Clone)]
pub(crate) struct PathsProvider {
    include: Vec<String>,
    exclude: Vec<Exclude>,
}

/// A name found by [`PathsProvider::discover_listed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) path: PathBuf,
    /// The device of its directory and the inode number the listing gave, for a regular
    /// file. A hint, never a decision: a name whose hint matches no open file is looked at
    /// (and opened) the careful way; one whose hint matches an open file's device and inode
    /// is that file, since a filesystem does not give one inode number to two files.
    pub(crate) listed: Option<(u64, u64)>,
}

impl Listed {
    /// The order of [`PathsProvider::discover_listed`]'s names: by their bytes.
    pub(crate) fn order(a: &Listed, b: &Listed) -> std::cmp::Ordering {
        a.path.as_os_str().cmp(b.path.as_os_str())
    }
}

/// A pattern split into the directories its start matches (expanded now) and its last
/// component as a pattern; `None` when the last component is a literal name or `**`.
fn split_last(pattern: &str) -> Option<(Vec<PathBuf>, glob::Pattern)> {
    let path = Path::new(pattern);
    let last = path.file_name()?.to_str()?;
    if last == "**" || !last.contains(['*', '?', '[']) {
        return None;
    }
    let last = glob::Pattern::new(last).ok()?;
    let parent = path.parent()?;
    let parent_text = parent.to_str()?;
    let dirs = if parent_text.contains(['*', '?', '[']) {
        glob::glob(parent_text)
            .ok()?
            .flatten()
            .filter(|d| d.is_dir())
            .collect()
    } else {
        vec![parent.to_path_buf()]
    };
    Some((dirs, last))
}

/// An exclude pattern. Most are `*.ext` (the defaults are): those are a suffix of the name,
/// tested without the glob matcher, which with thousands of files was a fifth of the idle
/// CPU (every pattern against every name at every scan).
#[derive(Debug, Clone)]
enum Exclude {
    Suffix(String),
    Glob(glob::Pattern),
}

impl Exclude {
    fn new(pattern: &str) -> Result<Exclude, PathsError> {
        let glob = glob::Pattern::new(pattern).map_err(|e| PathsError::BadPattern {
            pattern: pattern.to_string(),
            reason: e.msg.to_string(),
        })?;
        match pattern.strip_prefix('*') {
            Some(rest) if !rest.contains(['*', '?', '[', ']', '{', '}', '/', '\\']) => {
                Ok(Exclude::Suffix(rest.to_string()))
            }
            _ => Ok(Exclude::Glob(glob)),
        }
    }

    /// `*` matches `/` too (the glob crate's default), so a suffix of the name is a suffix
    /// of the path: testing the name is enough.
    fn matches(&self, path: &Path, name: Option<&Path>) -> bool {
        match self {
            Exclude::Suffix(suffix) => name
                .unwrap_or(path)
                .as_os_str()
                .as_encoded_bytes()
                .ends_with(suffix.as_bytes()),
            Exclude::Glob(p) => p.matches_path(path) || name.is_some_and(|n| p.matches_path(n)),
        }
    }
}

impl PathsProvider {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<PathsProvider, PathsError> {
        for pattern in include {
            glob::Pattern::new(pattern).map_err(|e| PathsError::BadPattern {
                pattern: pattern.clone(),
                reason: e.msg.to_string(),
            })?;
            if !Path::new(pattern).is_absolute() {
                return Err(PathsError::Relative {
                    pattern: pattern.clone(),
                });
            }
        }
        let exclude = exclude
            .iter()
            .map(|p| Exclude::new(p))
            .collect::<Result<_, _>>()?;
        Ok(PathsProvider {
            include: include.to_vec(),
            exclude,
        })
    }

    /// Names matching now, sorted and without duplicates. What each one is (a regular file,
    /// a link, a FIFO) is for [`super::open::OpenPolicy`] to say: a look here would race
    /// with a swap of the name.
    pub(crate) fn discover(&self) -> Vec<PathBuf> {
        self.discover_listed().into_iter().map(|l| l.path).collect()
    }

    /// [`PathsProvider::discover`], with what the directory listing said of each name.
    ///
    /// The last component of a pattern is matched against the names of each directory the
    /// rest of it matches, so each name comes with the inode number the listing gives for
    /// free: a scan then knows, without a `stat` each, which names are still the files it
    /// has open (at 10,000 files those stats were a third of the idle CPU). A pattern whose
    /// last component is a literal name or `**` goes through the glob crate as it is.
    pub(crate) fn discover_listed(&self) -> Vec<Listed> {
        let mut found = Vec::new();
        for pattern in &self.include {
            let (dirs, last) = match split_last(pattern) {
                Some(split) => split,
                None => {
                    let Ok(paths) = glob::glob(pattern) else {
                        continue;
                    };
                    found.extend(
                        paths
                            .flatten()
                            .filter(|p| !self.is_excluded(p))
                            .map(|path| Listed { path, listed: None }),
                    );
                    continue;
                }
            };
            for dir in dirs {
                self.list(&dir, &last, &mut found);
            }
        }
        // Sorted by their bytes, not by `Path`'s component order: the same order for lookups
        // (see [`Listed::order`]), and thousands of names sort without parsing components.
        found.sort_by(Listed::order);
        found.dedup_by(|a, b| a.path.as_os_str() == b.path.as_os_str());
        found
    }

    /// The names of `dir` matching `last`, excluded ones left out.
    fn list(&self, dir: &Path, last: &glob::Pattern, found: &mut Vec<Listed>) {
        use std::os::unix::fs::{DirEntryExt, MetadataExt};
        let (Ok(entries), Ok(meta)) = (std::fs::read_dir(dir), std::fs::metadata(dir)) else {
            return;
        };
        let dev = meta.dev();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !last.matches_path_with(Path::new(&name), glob::MatchOptions::new()) {
                continue;
            }
            let path = dir.join(&name);
            if self.is_excluded(&path) {
                continue;
            }
            // The type from the listing (no stat on most filesystems): only a regular file's
            // inode can be a file the shipper has open under this name.
            let regular = entry.file_type().is_ok_and(|t| t.is_file());
            found.push(Listed {
                path,
                listed: regular.then(|| (dev, entry.ino())),
            });
        }
    }

    fn is_excluded(&self, path: &Path) -> bool {
        let name = path.file_name().map(Path::new);
        self.exclude.iter().any(|p| p.matches(path, name))
    }

    /// The deepest directory of each pattern without glob characters: what to watch.
    pub(crate) fn watch_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.watch_plan().into_iter().map(|(r, _)| r).collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// Each watch root, and whether files below it lie in its subdirectories (a glob in a
    /// directory part, as kubelet's `/var/log/pods/*/*/*.log*`): then the root is watched
    /// recursively, or writes in the subdirectories would be seen only at the fallback
    /// checks (`SHIPPER_SCAN_INTERVAL`).
    fn watch_plan(&self) -> Vec<(PathBuf, bool)> {
        let mut plan: Vec<(PathBuf, bool)> = self
            .include
            .iter()
            .map(|pattern| {
                let mut root = PathBuf::new();
                let mut below = 0;
                for part in Path::new(pattern).components() {
                    let text = part.as_os_str().to_string_lossy();
                    if below > 0 || text.contains(['*', '?', '[', '{']) {
                        below += 1;
                        continue;
                    }
                    root.push(part);
                }
                if root.as_os_str() == pattern.as_str() {
                    root.pop();
                }
                (root, below > 1)
            })
            .collect();
        plan.sort();
        // One entry per root, recursive if any pattern needs it.
        plan.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 |= later.1;
                true
            } else {
                false
            }
        });
        plan
    }
}

/// What a filesystem event asks of the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Data was written: read.
    Read,
    /// A file appeared, moved or vanished: look at the globs again, then read.
    Rescan,
}

/// Wake-ups from filesystem events, coalesced: however many events arrive while the reader
/// is busy or paused (one per `write(2)` of every writer during an hours-long outage), what
/// waits is one "read" and one "rescan" flag and the set of paths written to, bounded by
/// [`MAX_DIRTY_PATHS`], never a queue that grows with the events.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    pending: Mutex<Pending>,
    ready: Condvar,
}

/// Distinct written paths remembered between two looks of the reader; past this, every file
/// is looked at (as after an event overflow).
pub(crate) const MAX_DIRTY_PATHS: usize = 4096;

#[derive(Debug, Default)]
struct Pending {
    read: bool,
    rescan: bool,
    /// Paths written to since the reader last looked.
    dirty: HashSet<PathBuf>,
    /// Too many paths to remember, or an event without one: look at every file.
    all_dirty: bool,
}

/// What the reader is woken for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Woken {
    /// A file appeared, moved or vanished.
    pub(crate) rescan: bool,
    /// Paths written to.
    pub(crate) dirty: HashSet<PathBuf>,
    /// Every file may have been written to.
    pub(crate) all_dirty: bool,
}

impl Wakeups {
    /// Records `wake` for `paths` and wakes the reader if it waits.
    pub(crate) fn signal(&self, wake: Wake, paths: &[PathBuf]) {
        let mut p = self.lock();
        match wake {
            Wake::Read => p.read = true,
            Wake::Rescan => p.rescan = true,
        }
        if wake == Wake::Read {
            if paths.is_empty() {
                p.all_dirty = true;
            }
            for path in paths {
                if p.all_dirty {
                    break;
                }
                if p.dirty.len() >= MAX_DIRTY_PATHS {
                    p.dirty.clear();
                    p.all_dirty = true;
                } else if !p.dirty.contains(path) {
                    p.dirty.insert(path.clone());
                }
            }
        }
        let waiting = usize::from(p.read) + usize::from(p.rescan) + p.dirty.len();
        metrics::gauge!("shipper_pending_wakeups").set(waiting as f64);
        drop(p);
        self.ready.notify_one();
    }

    /// Waits up to `timeout` for a wake-up and takes every pending one; `None` on time-out.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Woken> {
        let deadline = std::time::Instant::now() + timeout;
        let mut p = self.lock();
        while !p.read && !p.rescan {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            p = match self.ready.wait_timeout(p, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let taken = std::mem::take(&mut *p);
        metrics::gauge!("shipper_pending_wakeups").set(0.0);
        Some(Woken {
            rescan: taken.rescan,
            dirty: taken.dirty,
            all_dirty: taken.all_dirty,
        })
    }

    /// How many wake-ups wait: a flag of each kind and the paths written to.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        let p = self.lock();
        usize::from(p.read) + usize::from(p.rescan) + p.dirty.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A live filesystem watch; dropping it stops the events.
pub(crate) struct PathWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching the roots of `paths`, signalling a [`Wake`] per event into `wake`. Roots
/// that do not exist yet are skipped (the periodic rescan covers them).
pub(crate) fn watch(paths: &PathsProvider, wake: Arc<Wakeups>) -> notify::Result<PathWatch> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(e) => match e.kind {
                EventKind::Modify(notify::event::ModifyKind::Data(_)) => {
                    wake.signal(Wake::Read, &e.paths)
                }
                EventKind::Access(_) => {}
                _ => wake.signal(Wake::Rescan, &[]),
            },
            // Overflow or watch error: events may have been lost, so look at everything.
            Err(_) => {
                wake.signal(Wake::Rescan, &[]);
                wake.signal(Wake::Read, &[]);
            }
        }
    })?;
    for (root, recursive) in paths.watch_plan() {
        if !root.is_dir() {
            continue;
        }
        if recursive {
            match watcher.watch(&root, RecursiveMode::Recursive) {
                Ok(()) => continue,
                // Out of inotify watches (`fs.inotify.max_user_watches`), most likely: the
                // subdirectories' files are then seen at their fallback checks.
                Err(e) => {
                    tracing::warn!(root = %root.display(), error = %e, "cannot watch the directories below; files there are looked at every SHIPPER_SCAN_INTERVAL")
                }
            }
        }
        watcher.watch(&root, RecursiveMode::NonRecursive)?;
    }
    Ok(PathWatch { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `discover` found before it listed directories itself: the glob crate's matches.
    fn globbed(provider: &PathsProvider) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = provider
            .include
            .iter()
            .flat_map(|p| glob::glob(p).unwrap().flatten())
            .filter(|p| !provider.is_excluded(p))
            .collect();
        found.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        found.dedup();
        found
    }

    #[test]
    fn listing_directories_finds_what_the_glob_crate_finds_with_each_regular_files_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["pods/a_p_1/c", "pods/b_q_2/d", "pods/b_q_2/e.log.d", "flat"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for file in [
            "pods/a_p_1/c/0.log",
            "pods/a_p_1/c/0.log.20261202-101010",
            "pods/a_p_1/c/0.log.20261202-090909.gz",
            "pods/b_q_2/d/1.log",
            "pods/b_q_2/d/.hidden.log",
            "flat/payment.log",
            "flat/payment.log.1",
            "flat/payment.log.2.zst",
            "flat/notes.txt",
        ] {
            std::fs::write(root.join(file), b"x\n").unwrap();
        }
        std::os::unix::fs::symlink(root.join("flat/payment.log"), root.join("flat/link.log"))
            .unwrap();
        let r = root.display();
        let patterns = [
            format!("{r}/pods/*/*/*.log*"),
            format!("{r}/flat/*.log*"),
            format!("{r}/flat/payment.log"),
            format!("{r}/**/*.log"),
            format!("{r}/fla?/[pn]*"),
            format!("{r}/missing/*.log"),
        ];
        for pattern in &patterns {
            let provider =
                PathsProvider::new(std::slice::from_ref(pattern), &["*.zst".to_string()]).unwrap();
            let listed = provider.discover_listed();
            let paths: Vec<PathBuf> = listed.iter().map(|l| l.path.clone()).collect();
            assert_eq!(paths, globbed(&provider), "{pattern}");
            for l in &listed {
                let meta = std::fs::symlink_metadata(&l.path).unwrap();
                if let Some(hint) = l.listed {
                    assert_eq!(hint, (meta.dev(), meta.ino()), "{:?}", l.path);
                } else {
                    let literal = !pattern.rsplit('/').next().unwrap().contains('*');
                    assert!(
                        !meta.is_file() || literal,
                        "a regular file listed without its inode: {:?}",
                        l.path
                    );
                }
            }
        }
        let provider = PathsProvider::new(&[format!("{r}/flat/*.log")], &[]).unwrap();
        let link = provider
            .discover_listed()
            .into_iter()
            .find(|l| l.path.ends_with("link.log"))
            .unwrap();
        assert_eq!(link.listed, None, "a link's own inode is no file's");
    }

    #[test]
    fn wake_ups_coalesce_however_many_events_arrive() {
        let w = Wakeups::default();
        let a = PathBuf::from("/logs/a.log");
        for _ in 0..100_000 {
            w.signal(Wake::Read, std::slice::from_ref(&a));
        }
        assert_eq!(w.pending(), 2, "one read flag and one path");
        w.signal(Wake::Rescan, &[]);
        assert_eq!(w.pending(), 3);
        let woken = w.wait(Duration::ZERO).unwrap();
        assert!(woken.rescan && !woken.all_dirty);
        assert_eq!(woken.dirty, HashSet::from([a.clone()]));
        assert_eq!(w.pending(), 0);
        assert_eq!(w.wait(Duration::from_millis(1)), None);
        w.signal(Wake::Read, &[a]);
        let woken = w.wait(Duration::from_secs(5)).unwrap();
        assert!(!woken.rescan && woken.dirty.len() == 1);
    }

    #[test]
    fn too_many_written_paths_mean_every_file_is_looked_at() {
        let w = Wakeups::default();
        for n in 0..MAX_DIRTY_PATHS + 10 {
            w.signal(Wake::Read, &[PathBuf::from(format!("/logs/{n}.log"))]);
        }
        assert!(w.pending() <= MAX_DIRTY_PATHS + 2);
        let woken = w.wait(Duration::ZERO).unwrap();
        assert!(woken.all_dirty);
        assert!(woken.dirty.len() < MAX_DIRTY_PATHS);
    }

    #[test]
    fn a_waiting_reader_is_woken_by_another_thread() {
        let w = Arc::new(Wakeups::default());
        let signaller = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            signaller.signal(Wake::Rescan, &[]);
        });
        assert!(w.wait(Duration::from_secs(10)).is_some_and(|w| w.rescan));
        t.join().unwrap();
    }

    #[test]
    fn globs_find_names_minus_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.log", "a.log.1", "b.log", "old.log.gz"] {
            std::fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.log")).unwrap();
        let base = dir.path().to_string_lossy().to_string();
        let p = PathsProvider::new(&[format!("{base}/*.log*")], &["*.gz".to_string()]).unwrap();
        let names: Vec<String> = p
            .discover()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.log", "a.log.1", "b.log", "sub.log"]);
    }

    #[test]
    fn suffix_excludes_match_like_the_glob_they_are() {
        let p = PathsProvider::new(
            &["/logs/*".to_string()],
            &[
                "*.gz".to_string(),
                "*old*".to_string(),
                "/logs/skip-*".to_string(),
            ],
        )
        .unwrap();
        for (path, excluded) in [
            ("/logs/a.log.2.gz", true),
            ("/logs/a.gz.log", false),
            ("/logs/gz", false),
            ("/logs/a.old.log", true),
            ("/logs/skip-me.log", true),
            ("/logs/a.log", false),
        ] {
            assert_eq!(p.is_excluded(Path::new(path)), excluded, "{path}");
            let glob_says = ["*.gz", "*old*", "/logs/skip-*"].iter().any(|g| {
                let g = glob::Pattern::new(g).unwrap();
                let path = Path::new(path);
                g.matches_path(path) || g.matches_path(Path::new(path.file_name().unwrap()))
            });
            assert_eq!(glob_says, excluded, "the glob crate agrees on {path}");
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let err = PathsProvider::new(&["/var/log/[".to_string()], &[]).unwrap_err();
        assert!(err.to_string().contains("/var/log/["), "{err}");
        assert!(PathsProvider::new(&["relative/*.log".to_string()], &[]).is_err());
    }

    #[test]
    fn roots_above_globbed_directories_are_watched_recursively() {
        let p = PathsProvider::new(
            &[
                "/var/log/pods/*/*/*.log*".to_string(),
                "/var/log/containers/*.log".to_string(),
                "/var/log/didban/*.log".to_string(),
                "/var/log/didban/x.log".to_string(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            p.watch_plan(),
            vec![
                (PathBuf::from("/var/log/containers"), false),
                (PathBuf::from("/var/log/didban"), false),
                (PathBuf::from("/var/log/pods"), true),
            ]
        );
    }

    #[test]
    fn watch_roots_stop_at_the_first_glob() {
        let p = PathsProvider::new(
            &[
                "/var/log/didban/*.log".to_string(),
                "/srv/*/logs/x.log".to_string(),
                "/tmp/one.log".to_string(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            p.watch_roots(),
            vec![
                PathBuf::from("/srv"),
                PathBuf::from("/tmp"),
                PathBuf::from("/var/log/didban")
            ]
        );
    }
}
