//! The identity decisions, as pure functions of facts.
//!
//! Two questions are answered here:
//!
//! 1. [`identify`]: a file appeared under the globs (new, renamed in, or seen again after a
//!    restart). Is it a copy of a file being read, an identity already known (and from which
//!    offset does reading resume), or a new identity?
//! 2. [`check_open`]: on a turn of an open file, is it still the identity it was opened as,
//!    or was it truncated or rewritten under the reader?
//!
//! The answers rest on three layers of evidence, cheapest first: the fingerprint (first
//! line), the device/inode pair, and the bytes before the last offset whose id may have been
//! used ([`TailMark`]). Reading those bytes is I/O, so the functions ask for them through
//! [`Probe`] and only when a decision needs them; the loop supplies the real probe
//! ([`super::evidence`]), the tests a table.

use std::io;

use super::{FileKey, Fingerprint, HeadMark, LineMark, TailMark, HEAD_MARK_LEN};

/// How the beginnings of two files with the same fingerprint compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Heads {
    /// The same bytes past the first line: one is a copy of the other.
    Same,
    /// They differ after the shared first line: two files with a common header.
    Differ,
    /// Equal so far, but nothing past the first line yet: cannot tell.
    TooShort,
}

/// A newly seen file, as the loop found it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seen {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
}

/// A file being read that has the same fingerprint as the file seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Twin {
    /// Index the probe knows it by.
    pub(crate) index: usize,
}

/// A known identity with the same fingerprint that no open file holds.
#[derive(Clone, Debug)]
pub(crate) struct Known {
    pub(crate) slot: u32,
    pub(crate) key: FileKey,
    /// Where this identity was last seen.
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Where reading of it stopped (the end of the last line read).
    pub(crate) read_offset: u64,
    /// How far its ids may have been used, and the mark of the bytes before that: what a
    /// file must hold to be this identity.
    pub(crate) used: u64,
    pub(crate) used_tail: TailMark,
    /// Its last line ends before `used`, newest last (see [`FileCheckpoint::recent`]).
    ///
    /// [`FileCheckpoint::recent`]: crate::input::checkpoint::FileCheckpoint::recent
    pub(crate) recent: Vec<LineMark>,
    /// The copy it was found to live on in, if any.
    pub(crate) copy_end: Option<LineMark>,
    /// Mark of its first bytes, if its file was read to its end (compressed files only).
    pub(crate) head: HeadMark,
}

/// The questions a decision may ask about file contents.
pub(crate) trait Probe {
    /// Does the open twin still hold what was read of it (not truncated, same first line,
    /// the bytes before its read position unchanged)? Returns its length too.
    fn twin_intact(&mut self, twin: Twin) -> io::Result<(bool, u64)>;
    /// How the seen file's head compares with the twin's.
    fn heads(&mut self, twin: Twin) -> io::Result<Heads>;
    /// Does the seen file hold `tail` just before `offset`?
    fn seen_holds(&mut self, offset: u64, tail: &TailMark) -> io::Result<bool>;
    /// Is the file `dev`/`ino` still under the globs, and does it start with `fingerprint`
    /// and hold `tail` just before `offset`?
    fn elsewhere_holds(
        &mut self,
        dev: u64,
        ino: u64,
        fingerprint: Fingerprint,
        offset: u64,
        tail: &TailMark,
    ) -> bool;
}

/// What to do with a newly seen file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Identified {
    /// A twin being read is mid-change (truncated or rewritten since its last turn; this is
    /// likely its copy): decide after its turn has given its identity up.
    AfterTwinsTurn,
    /// A copy (copytruncate) of a twin being read: the original is read; this one is looked
    /// at again when the original goes away.
    CopyOfOpen,
    /// Only the shared first line so far: look again when more bytes arrive.
    NeedMoreBytes,
    /// The known identity in `slot`: resume reading at `offset`.
    Resume {
        slot: u32,
        key: FileKey,
        offset: u64,
    },
    /// A copy of the first bytes of the identity in `slot`: the copy copytruncate made
    /// before the reader read past its end. It continues that identity, from `offset` (where
    /// reading resumes; at or past the copy's end when all of it was read already); it is
    /// not a new file.
    PrefixCopy {
        slot: u32,
        key: FileKey,
        offset: u64,
    },
    /// A new identity, read from the start. `salted`: another identity already uses the
    /// fingerprint as its key, so the key must be made unique.
    New { salted: bool },
}

/// Decides which identity the file `seen` has.
///
/// `twins` are the open files with the same fingerprint, `known` the other identities with
/// it (in any order: the one last seen on the same inode is tried first), `key_taken`
/// whether an identity already uses the fingerprint as its key.
pub(crate) fn identify(
    seen: Seen,
    twins: &[Twin],
    known: &[Known],
    key_taken: bool,
    probe: &mut impl Probe,
) -> io::Result<Identified> {
    for &twin in twins {
        let (intact, twin_len) = probe.twin_intact(twin)?;
        if !intact {
            return Ok(Identified::AfterTwinsTurn);
        }
        match probe.heads(twin)? {
            // A copy holds its original's bytes and is never longer than an original that
            // was not truncated.
            Heads::Same if seen.size <= twin_len => return Ok(Identified::CopyOfOpen),
            Heads::TooShort if seen.size <= twin_len => return Ok(Identified::NeedMoreBytes),
            // Only the first line (a header, a banner) is shared, or this one holds more than
            // the original ever did: another file, with an identity of its own.
            _ => {}
        }
    }
    let mut order: Vec<&Known> = known.iter().collect();
    // The same inode first: the most likely to be the same file.
    order.sort_by_key(|k| !(k.dev == seen.dev && k.ino == seen.ino));
    for k in order {
        if (k.dev, k.ino) != (seen.dev, seen.ino)
            && probe.elsewhere_holds(k.dev, k.ino, seen.fingerprint, k.used, &k.used_tail)
        {
            // The file this identity was last seen as is still here and still holds what was
            // read of it: the identity is that file's, not this one's (which only starts
            // with the same line).
            continue;
        }
        // This file must hold what was read of the identity, up to the last line whose id
        // may have been used; reading resumes after the last line read.
        if seen.size >= k.used && probe.seen_holds(k.used, &k.used_tail)? {
            return Ok(Identified::Resume {
                slot: k.slot,
                key: k.key,
                offset: k.read_offset,
            });
        }
        // Shorter than what was read: a copy made while the reader stood past its end
        // holds the identity's bytes up to its length, so the last line end it can hold
        // must be there. One mark, the closest below its length, decides.
        if seen.size < k.used {
            if let Some(mark) = prefix_mark(seen.size, k) {
                if probe.seen_holds(mark.offset, &mark.tail)? {
                    return Ok(Identified::PrefixCopy {
                        slot: k.slot,
                        key: k.key,
                        offset: k.read_offset,
                    });
                }
            }
        }
    }
    Ok(Identified::New { salted: key_taken })
}

/// The mark a prefix copy of `k` that is `size` bytes long must hold: exactly the copy it was
/// already found in, if any (a copy that changed since is another file), or else its last
/// recent line end within `size`.
fn prefix_mark(size: u64, k: &Known) -> Option<LineMark> {
    match k.copy_end {
        Some(end) => (end.offset == size).then_some(end),
        None => k
            .recent
            .iter()
            .rev()
            .find(|m| m.offset <= size && m.offset > 0)
            .copied(),
    }
}

/// A compressed file (`x.log.2.gz`) that appeared under the globs, as the loop found it
/// (besides its fingerprint, which chose the candidates).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeenCompressed {
    /// The decompressed size its gzip trailer records (modulo 2^32), if readable.
    pub(crate) trailer_size: Option<u32>,
}

/// The questions [`identify_compressed`] may ask about a compressed file's contents.
pub(crate) trait CompressedProbe {
    /// How the decompressed head compares with the head of the open twin.
    fn heads(&mut self, twin: Twin) -> io::Result<Heads>;
    /// Do the first decompressed bytes have the mark `head`?
    fn head_is(&mut self, head: &HeadMark) -> bool;
    /// What the decompressed stream holds before `offset`, compared with `tail`.
    fn holds(&mut self, offset: u64, tail: &TailMark) -> Holds;
}

/// What a compressed file holds before an offset (see [`CompressedProbe::holds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holds {
    /// The marked bytes; `ends_there`: nothing after them.
    Match {
        ends_there: bool,
    },
    Differs,
    /// The stream ends before the offset.
    Shorter,
    /// Decompression fails before the offset.
    Damaged,
}

/// What to do with a compressed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompressedVerdict {
    /// An open file holds the same head (the file it was made from, still being read):
    /// decide once that one is finished, so the identity is never read twice at once.
    Wait,
    /// Everything it holds was already read under the identity in `slot`: nothing to read.
    Shipped { slot: u32 },
    /// The identity in `slot`, read up to `offset` (decompressed): read on from there.
    Resume {
        slot: u32,
        key: FileKey,
        offset: u64,
    },
    /// An identity never seen: read it whole.
    New { salted: bool },
}

/// Decides which identity a compressed file has.
///
/// A compressed file is the final state of the file it was made from, so the only question
/// is how much of it was already read. `twins` are the open files with its fingerprint,
/// `known` the other identities with it. Cheapest first: a twin with the same head means
/// the original is still being read (wait for it); an identity read exactly as far as the
/// trailer's size says the file is long, and whose first bytes (up to 4 KiB, past a shared
/// header) are the file's, was fully read: a read of the head, nothing more;
/// otherwise the stream is decompressed up to what was read of each candidate and its tail
/// mark checked, as for a plain file. Unlike a plain file, the identity's last file need not
/// be gone: a compressed copy holding the identity's bytes continues it.
pub(crate) fn identify_compressed(
    seen: SeenCompressed,
    twins: &[Twin],
    known: &[Known],
    key_taken: bool,
    probe: &mut impl CompressedProbe,
) -> io::Result<CompressedVerdict> {
    for &twin in twins {
        if probe.heads(twin)? != Heads::Differ {
            return Ok(CompressedVerdict::Wait);
        }
    }
    for k in known {
        if k.used > 0
            && k.read_offset == k.used
            && seen.trailer_size == Some(k.used as u32)
            // The mark covers the head as far as the file reaches now (a mark taken while
            // the file held only a shared header would tell nothing).
            && k.head.len > 0
            && u64::from(k.head.len) == k.used.min(HEAD_MARK_LEN as u64)
            && probe.head_is(&k.head)
        {
            return Ok(CompressedVerdict::Shipped { slot: k.slot });
        }
    }
    for k in known {
        match probe.holds(k.used, &k.used_tail) {
            Holds::Match { ends_there: true } if k.read_offset == k.used => {
                return Ok(CompressedVerdict::Shipped { slot: k.slot });
            }
            Holds::Match { .. } => {
                return Ok(CompressedVerdict::Resume {
                    slot: k.slot,
                    key: k.key,
                    offset: k.read_offset,
                });
            }
            // Its first line is this identity's and it breaks before what was read of it:
            // what decompresses was read already. Shipping it under a new identity would
            // index those lines twice.
            Holds::Damaged => return Ok(CompressedVerdict::Shipped { slot: k.slot }),
            Holds::Differs | Holds::Shorter => {}
        }
    }
    // A compressed copytruncate copy that ends before what was read of the identity (see
    // `identify`): the mark it must hold is the copy it was found in, or the last recent
    // line end within the size its trailer records.
    for k in known {
        let size = seen.trailer_size.map(u64::from);
        let mark = match (k.copy_end, size) {
            (Some(end), _) => Some(end),
            (None, Some(size)) if k.used < 1 << 32 => prefix_mark(size, k),
            _ => None,
        };
        let Some(mark) = mark else { continue };
        let whole = k.copy_end.is_some();
        match probe.holds(mark.offset, &mark.tail) {
            Holds::Match { ends_there } if ends_there || !whole => {
                if k.read_offset >= mark.offset && (ends_there || k.read_offset >= k.used) {
                    return Ok(CompressedVerdict::Shipped { slot: k.slot });
                }
                return Ok(CompressedVerdict::Resume {
                    slot: k.slot,
                    key: k.key,
                    offset: k.read_offset,
                });
            }
            _ => {}
        }
    }
    Ok(CompressedVerdict::New { salted: key_taken })
}

/// What an open file's turn finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenCheck {
    /// Still the identity it was opened as: read on.
    Same,
    /// Shrunk, or rewritten from the start: this identity no longer lives here.
    Truncated,
}

/// The facts of one turn of an open file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Turn {
    pub(crate) size: u64,
    /// Where the reader's next read starts.
    pub(crate) read_offset: u64,
    /// Size or modification time changed since the head was last verified.
    pub(crate) changed: bool,
}

/// The questions [`check_open`] may ask about an open file.
pub(crate) trait OpenProbe {
    /// The file's fingerprint now (`None`: not readable as one).
    fn fingerprint_now(&mut self) -> Option<Fingerprint>;
    /// Where reading stopped and the mark of the bytes before it, if known.
    fn read_position(&mut self) -> Option<(u64, TailMark)>;
    /// Does the file hold `tail` just before `offset`? (`true` when it cannot be read: an
    /// unreadable file is not proof of a rewrite.)
    fn holds(&mut self, offset: u64, tail: &TailMark) -> bool;
}

/// Is the open file, opened as `opened_as`, still that identity?
pub(crate) fn check_open(
    turn: Turn,
    opened_as: Fingerprint,
    probe: &mut impl OpenProbe,
) -> OpenCheck {
    if turn.size < turn.read_offset {
        return OpenCheck::Truncated;
    }
    if !turn.changed {
        return OpenCheck::Same;
    }
    // Truncated and written again between two looks, the file may be as long as before or
    // longer: only its head tells. Checked whenever the file changed, not on every turn.
    if let Some(fp) = probe.fingerprint_now() {
        if fp != opened_as {
            return OpenCheck::Truncated;
        }
    }
    // A rewrite that starts with the same line (a header) keeps the fingerprint: the bytes
    // before the read position tell.
    if let Some((pos, tail)) = probe.read_position() {
        if pos <= turn.size && !probe.holds(pos, &tail) {
            return OpenCheck::Truncated;
        }
    }
    OpenCheck::Same
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: Fingerprint = 7;

    fn mark(n: u64) -> TailMark {
        TailMark { len: 8, hash: n }
    }

    /// A table of what files hold, in place of files.
    #[derive(Default)]
    struct Facts {
        /// Per twin: (intact, length, heads).
        twins: Vec<(bool, u64, Heads)>,
        /// Marks the seen file holds, as (offset, mark).
        seen_holds: Vec<(u64, TailMark)>,
        /// Files still present elsewhere that hold their identity: (dev, ino).
        elsewhere: Vec<(u64, u64)>,
        asked_heads: usize,
    }

    impl Probe for Facts {
        fn twin_intact(&mut self, twin: Twin) -> io::Result<(bool, u64)> {
            let (intact, len, _) = self.twins[twin.index];
            Ok((intact, len))
        }
        fn heads(&mut self, twin: Twin) -> io::Result<Heads> {
            self.asked_heads += 1;
            Ok(self.twins[twin.index].2)
        }
        fn seen_holds(&mut self, offset: u64, tail: &TailMark) -> io::Result<bool> {
            Ok(offset == 0 || self.seen_holds.contains(&(offset, *tail)))
        }
        fn elsewhere_holds(
            &mut self,
            dev: u64,
            ino: u64,
            _: Fingerprint,
            _: u64,
            _: &TailMark,
        ) -> bool {
            self.elsewhere.contains(&(dev, ino))
        }
    }

    fn seen(size: u64) -> Seen {
        Seen {
            fingerprint: FP,
            dev: 1,
            ino: 10,
            size,
        }
    }

    fn known(slot: u32, ino: u64, read_offset: u64, used: u64) -> Known {
        Known {
            slot,
            key: 100 + u64::from(slot),
            dev: 1,
            ino,
            read_offset,
            used,
            used_tail: mark(used),
            head: HeadMark {
                len: used.min(HEAD_MARK_LEN as u64) as u32,
                hash: 1,
            },
            recent: vec![],
            copy_end: None,
        }
    }

    fn lm(offset: u64) -> LineMark {
        LineMark {
            offset,
            tail: mark(offset),
        }
    }

    fn twins(n: usize) -> Vec<Twin> {
        (0..n).map(|index| Twin { index }).collect()
    }

    struct Case {
        name: &'static str,
        size: u64,
        facts: Facts,
        twins: usize,
        known: Vec<Known>,
        key_taken: bool,
        want: Identified,
    }

    #[test]
    fn identify_decides_every_case_of_the_table() {
        let cases = vec![
            Case {
                name: "a file never seen: new, keyed by its fingerprint",
                size: 50,
                facts: Facts::default(),
                twins: 0,
                known: vec![],
                key_taken: false,
                want: Identified::New { salted: false },
            },
            Case {
                name: "never seen, but the fingerprint is some identity's key: a salted key",
                size: 50,
                facts: Facts::default(),
                twins: 0,
                known: vec![],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "a twin being read was truncated since its last turn: wait for its turn",
                size: 50,
                facts: Facts {
                    twins: vec![(false, 10, Heads::Same)],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![],
                key_taken: true,
                want: Identified::AfterTwinsTurn,
            },
            Case {
                name: "copytruncate's copy while the original is intact: the original is read",
                size: 80,
                facts: Facts {
                    twins: vec![(true, 100, Heads::Same)],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![],
                key_taken: true,
                want: Identified::CopyOfOpen,
            },
            Case {
                name: "same head but longer than the open file: another file",
                size: 200,
                facts: Facts {
                    twins: vec![(true, 100, Heads::Same)],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "only the shared first line yet: wait for bytes that tell",
                size: 20,
                facts: Facts {
                    twins: vec![(true, 100, Heads::TooShort)],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![],
                key_taken: true,
                want: Identified::NeedMoreBytes,
            },
            Case {
                name: "a common header, then different bytes: a file of its own",
                size: 60,
                facts: Facts {
                    twins: vec![(true, 100, Heads::Differ)],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "a known identity whose bytes this file holds: resume at the read offset",
                size: 500,
                facts: Facts {
                    seen_holds: vec![(300, mark(300))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![known(3, 99, 250, 300)],
                key_taken: true,
                want: Identified::Resume {
                    slot: 3,
                    key: 103,
                    offset: 250,
                },
            },
            Case {
                name: "the known identity's own file is still there and holds it: not this one",
                size: 500,
                facts: Facts {
                    seen_holds: vec![(300, mark(300))],
                    elsewhere: vec![(1, 99)],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![known(3, 99, 300, 300)],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "shorter than what was sent of the identity: not it (rewritten)",
                size: 100,
                facts: Facts {
                    seen_holds: vec![(300, mark(300))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![known(3, 99, 300, 300)],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "long enough but other bytes before the offset: not it",
                size: 500,
                facts: Facts::default(),
                twins: 0,
                known: vec![known(3, 99, 300, 300)],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "nothing of the identity was read yet: it resumes at 0 on any file",
                size: 5,
                facts: Facts::default(),
                twins: 0,
                known: vec![known(4, 99, 0, 0)],
                key_taken: true,
                want: Identified::Resume {
                    slot: 4,
                    key: 104,
                    offset: 0,
                },
            },
            Case {
                name: "two candidates: the one last seen on this inode is tried first",
                size: 500,
                facts: Facts {
                    seen_holds: vec![(100, mark(100)), (200, mark(200))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![known(5, 99, 100, 100), known(6, 10, 200, 200)],
                key_taken: true,
                want: Identified::Resume {
                    slot: 6,
                    key: 106,
                    offset: 200,
                },
            },
            Case {
                name: "a twin with another header does not hide a known identity",
                size: 500,
                facts: Facts {
                    twins: vec![(true, 40, Heads::Differ)],
                    seen_holds: vec![(300, mark(300))],
                    ..Facts::default()
                },
                twins: 1,
                known: vec![known(3, 99, 300, 300)],
                key_taken: true,
                want: Identified::Resume {
                    slot: 3,
                    key: 103,
                    offset: 300,
                },
            },
            Case {
                name:
                    "copytruncate's copy, made before the reader read past its end: a prefix copy",
                size: 260,
                facts: Facts {
                    seen_holds: vec![(250, mark(250))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![Known {
                    recent: vec![lm(200), lm(250), lm(275), lm(300)],
                    ..known(3, 99, 300, 300)
                }],
                key_taken: true,
                want: Identified::PrefixCopy {
                    slot: 3,
                    key: 103,
                    offset: 300,
                },
            },
            Case {
                name: "shorter, but not holding the last line end within its length: a new file",
                size: 260,
                facts: Facts {
                    // Holds an older mark, not the one that counts.
                    seen_holds: vec![(200, mark(200))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![Known {
                    recent: vec![lm(200), lm(250), lm(300)],
                    ..known(3, 99, 300, 300)
                }],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "no recent line end within its length: a new file (shipped whole)",
                size: 150,
                facts: Facts::default(),
                twins: 0,
                known: vec![Known {
                    recent: vec![lm(200), lm(300)],
                    ..known(3, 99, 300, 300)
                }],
                key_taken: true,
                want: Identified::New { salted: true },
            },
            Case {
                name: "the copy already found, unchanged: the same prefix copy again",
                size: 260,
                facts: Facts {
                    seen_holds: vec![(260, mark(260))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![Known {
                    copy_end: Some(lm(260)),
                    recent: vec![lm(250)],
                    ..known(3, 99, 300, 300)
                }],
                key_taken: true,
                want: Identified::PrefixCopy {
                    slot: 3,
                    key: 103,
                    offset: 300,
                },
            },
            Case {
                name: "the copy already found, but it grew since: another file, nothing lost",
                size: 280,
                facts: Facts {
                    seen_holds: vec![(260, mark(260)), (275, mark(275))],
                    ..Facts::default()
                },
                twins: 0,
                known: vec![Known {
                    copy_end: Some(lm(260)),
                    recent: vec![lm(275)],
                    ..known(3, 99, 300, 300)
                }],
                key_taken: true,
                want: Identified::New { salted: true },
            },
        ];
        for mut case in cases {
            let got = identify(
                seen(case.size),
                &twins(case.twins),
                &case.known,
                case.key_taken,
                &mut case.facts,
            )
            .unwrap();
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_twin_mid_change_is_decided_before_comparing_heads() {
        let mut facts = Facts {
            twins: vec![(false, 10, Heads::Same)],
            ..Facts::default()
        };
        identify(seen(50), &twins(1), &[], false, &mut facts).unwrap();
        assert_eq!(facts.asked_heads, 0);
    }

    struct OpenFacts {
        fingerprint: Option<Fingerprint>,
        position: Option<(u64, TailMark)>,
        holds: bool,
    }

    impl OpenProbe for OpenFacts {
        fn fingerprint_now(&mut self) -> Option<Fingerprint> {
            self.fingerprint
        }
        fn read_position(&mut self) -> Option<(u64, TailMark)> {
            self.position
        }
        fn holds(&mut self, _: u64, _: &TailMark) -> bool {
            self.holds
        }
    }

    #[test]
    fn check_open_decides_every_case_of_the_table() {
        let intact = || OpenFacts {
            fingerprint: Some(FP),
            position: Some((100, mark(100))),
            holds: true,
        };
        let turn = |size, changed| Turn {
            size,
            read_offset: 100,
            changed,
        };
        let cases: Vec<(&str, Turn, OpenFacts, OpenCheck)> = vec![
            (
                "grew, same head and tail",
                turn(150, true),
                intact(),
                OpenCheck::Same,
            ),
            (
                "shorter than what was read",
                turn(50, false),
                intact(),
                OpenCheck::Truncated,
            ),
            (
                "unchanged since the last look: no I/O, same",
                turn(100, false),
                OpenFacts {
                    fingerprint: Some(FP + 1),
                    ..intact()
                },
                OpenCheck::Same,
            ),
            (
                "rewritten with another first line, as long as before",
                turn(150, true),
                OpenFacts {
                    fingerprint: Some(FP + 1),
                    ..intact()
                },
                OpenCheck::Truncated,
            ),
            (
                "rewritten with the same header: the tail tells",
                turn(150, true),
                OpenFacts {
                    holds: false,
                    ..intact()
                },
                OpenCheck::Truncated,
            ),
            (
                "head not readable as a fingerprint: the tail still decides",
                turn(150, true),
                OpenFacts {
                    fingerprint: None,
                    ..intact()
                },
                OpenCheck::Same,
            ),
        ];
        for (name, turn, mut facts, want) in cases {
            assert_eq!(check_open(turn, FP, &mut facts), want, "{name}");
        }
    }

    /// A compressed file's contents, as a table.
    #[derive(Default)]
    struct Compressed {
        heads: Vec<Heads>,
        /// Per offset, what the stream holds there.
        holds: Vec<(u64, Holds)>,
        asked_holds: usize,
        /// The head is another identity's (a common header, then other bytes).
        other_head: bool,
    }

    impl CompressedProbe for Compressed {
        fn heads(&mut self, twin: Twin) -> io::Result<Heads> {
            Ok(self.heads[twin.index])
        }
        fn head_is(&mut self, _: &HeadMark) -> bool {
            !self.other_head
        }
        fn holds(&mut self, offset: u64, _: &TailMark) -> Holds {
            self.asked_holds += 1;
            self.holds
                .iter()
                .find(|(o, _)| *o == offset)
                .map_or(Holds::Differs, |(_, h)| *h)
        }
    }

    #[test]
    fn identify_compressed_decides_every_case_of_the_table() {
        let gz = |trailer: Option<u32>| SeenCompressed {
            trailer_size: trailer,
        };
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            SeenCompressed,
            Compressed,
            Vec<Known>,
            bool,
            CompressedVerdict,
            usize,
        )> = vec![
            (
                "an identity never seen: read whole",
                gz(Some(500)),
                Compressed::default(),
                vec![],
                false,
                CompressedVerdict::New { salted: false },
                0,
            ),
            (
                "the file it was made from is still open: wait for it",
                gz(Some(500)),
                Compressed {
                    heads: vec![Heads::Same],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::Wait,
                0,
            ),
            (
                "fully read, and the trailer says as much: no decompression",
                gz(Some(300)),
                Compressed::default(),
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::Shipped { slot: 3 },
                0,
            ),
            (
                "a common header and the same length, other bytes: decompressed to tell",
                gz(Some(300)),
                Compressed {
                    other_head: true,
                    holds: vec![(300, Holds::Differs)],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::New { salted: true },
                1,
            ),
            (
                "fully read, but its head was never marked: decompressed to tell",
                gz(Some(300)),
                Compressed {
                    holds: vec![(300, Holds::Match { ends_there: true })],
                    ..Compressed::default()
                },
                vec![Known {
                    head: HeadMark::default(),
                    ..known(3, 99, 300, 300)
                }],
                true,
                CompressedVerdict::Shipped { slot: 3 },
                1,
            ),
            (
                "read in part: resume inside it",
                gz(Some(900)),
                Compressed {
                    holds: vec![(300, Holds::Match { ends_there: false })],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::Resume {
                    slot: 3,
                    key: 103,
                    offset: 300,
                },
                1,
            ),
            (
                "read further than acknowledged (a restart): resume at the read offset",
                gz(Some(300)),
                Compressed {
                    holds: vec![(300, Holds::Match { ends_there: true })],
                    ..Compressed::default()
                },
                vec![known(3, 99, 250, 300)],
                true,
                CompressedVerdict::Resume {
                    slot: 3,
                    key: 103,
                    offset: 250,
                },
                1,
            ),
            (
                "fully read but no usable trailer: the stream tells",
                gz(None),
                Compressed {
                    holds: vec![(300, Holds::Match { ends_there: true })],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::Shipped { slot: 3 },
                1,
            ),
            (
                "a common header, other bytes: an identity of its own",
                gz(Some(900)),
                Compressed {
                    heads: vec![Heads::Differ],
                    holds: vec![(300, Holds::Differs)],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::New { salted: true },
                1,
            ),
            (
                "shorter than what was read of the identity: not it",
                gz(Some(100)),
                Compressed {
                    holds: vec![(300, Holds::Shorter)],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::New { salted: true },
                1,
            ),
            (
                "damaged before what was read: that much was shipped already",
                gz(Some(12345)),
                Compressed {
                    holds: vec![(300, Holds::Damaged)],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300)],
                true,
                CompressedVerdict::Shipped { slot: 3 },
                1,
            ),
            (
                "two identities share the header: the one whose bytes it holds",
                gz(Some(5000)),
                Compressed {
                    holds: vec![(400, Holds::Match { ends_there: false })],
                    ..Compressed::default()
                },
                vec![known(3, 99, 300, 300), known(4, 98, 400, 400)],
                true,
                CompressedVerdict::Resume {
                    slot: 4,
                    key: 104,
                    offset: 400,
                },
                2,
            ),
        ];
        for (name, seen, mut facts, known, key_taken, want, asked) in cases {
            let twins = twins(facts.heads.len());
            let got = identify_compressed(seen, &twins, &known, key_taken, &mut facts).unwrap();
            assert_eq!(got, want, "{name}");
            assert_eq!(facts.asked_holds, asked, "decompression passes: {name}");
        }
    }
}
