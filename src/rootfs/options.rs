//! Parsing of OCI mount options into mount(2) flags, propagation changes, recursive
//! mount_setattr(2) attributes and filesystem data, following runc's vocabulary.

use nix::mount::MsFlags;

/// mount_setattr(2) attribute bits (include/uapi/linux/mount.h); stable kernel ABI.
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub const MOUNT_ATTR_ATIME: u64 = 0x0000_0070;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;

/// Attribute change for mount_setattr(2): bits to set and bits to clear.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttrChange {
    pub set: u64,
    pub clr: u64,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn set_bit(&mut self, bit: u64) {
        self.set |= bit;
        self.clr &= !bit;
    }

    fn clear_bit(&mut self, bit: u64) {
        self.clr |= bit;
        self.set &= !bit;
    }

    /// The access-time setting is an enumeration in the kernel: changing it requires
    /// clearing the whole MOUNT_ATTR__ATIME field and setting the new value.
    fn set_atime(&mut self, value: u64) {
        self.clr |= MOUNT_ATTR_ATIME;
        self.set = (self.set & !MOUNT_ATTR_ATIME) | value;
    }
}

/// A mount's options, split by how they are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to pass to mount(2) (for bind mounts: the flags of the remount step).
    pub flags: MsFlags,
    /// Flags the user explicitly turned off ("rw", "suid", "dev", ...): a bind mount
    /// must clear them even when the source has them.
    pub cleared: MsFlags,
    /// Whether any access-time word was given (then the source's atime is not kept).
    pub atime_given: bool,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes ("rro", "rnosuid", ...) applied with AT_RECURSIVE.
    pub recursive: AttrChange,
    /// Unknown words, passed to the filesystem as data (comma-joined).
    pub data: Vec<String>,
    /// runc's "tmpcopyup" extension: fill a new tmpfs with what it covers.
    pub copy_up: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            atime_given: false,
            propagation: Vec::new(),
            recursive: AttrChange::default(),
            data: Vec::new(),
            copy_up: false,
        }
    }
}

/// Options that are recognised but not implemented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOption(pub String);

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn is_recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    pub fn data_string(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }

    /// The non-recursive attribute change equivalent to the requested per-mount flags, for
    /// applying them to a single (bind) mount with mount_setattr without AT_RECURSIVE.
    /// Flags not requested are left as they are, so flags locked by a user namespace are kept.
    pub fn bind_attr_change(&self) -> AttrChange {
        let mut c = AttrChange::default();
        let pairs = [
            (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        ];
        for (ms, attr) in pairs {
            if self.flags.contains(ms) {
                c.set_bit(attr);
            } else if self.cleared.contains(ms) {
                c.clear_bit(attr);
            }
        }
        if self.atime_given {
            if self.flags.contains(MsFlags::MS_NOATIME) {
                c.set_atime(MOUNT_ATTR_NOATIME);
            } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
                c.set_atime(MOUNT_ATTR_STRICTATIME);
            } else if self.flags.contains(MsFlags::MS_RELATIME) {
                c.set_atime(MOUNT_ATTR_RELATIME);
            } else if self.cleared.contains(MsFlags::MS_NOATIME) {
                // "atime": the kernel default (relatime) rather than noatime.
                c.set_atime(MOUNT_ATTR_RELATIME);
            } else if self.cleared.contains(MsFlags::MS_RELATIME) {
                c.set_atime(MOUNT_ATTR_STRICTATIME);
            } else if self.cleared.contains(MsFlags::MS_STRICTATIME) {
                c.set_atime(MOUNT_ATTR_RELATIME);
            }
        }
        c
    }
}

enum Word {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    RecSet(u64),
    RecClear(u64),
    RecAtime(u64),
    Nothing,
    CopyUp,
    Unsupported,
}

fn classify(word: &str) -> Option<Word> {
    use MsFlags as F;
    use Word::*;
    Some(match word {
        "defaults" => Nothing,
        "ro" => Set(F::MS_RDONLY),
        "rw" => Clear(F::MS_RDONLY),
        "nosuid" => Set(F::MS_NOSUID),
        "suid" => Clear(F::MS_NOSUID),
        "nodev" => Set(F::MS_NODEV),
        "dev" => Clear(F::MS_NODEV),
        "noexec" => Set(F::MS_NOEXEC),
        "exec" => Clear(F::MS_NOEXEC),
        "sync" => Set(F::MS_SYNCHRONOUS),
        "async" => Clear(F::MS_SYNCHRONOUS),
        "dirsync" => Set(F::MS_DIRSYNC),
        "remount" => Set(F::MS_REMOUNT),
        "mand" => Set(F::MS_MANDLOCK),
        "nomand" => Clear(F::MS_MANDLOCK),
        "noatime" => Set(F::MS_NOATIME),
        "atime" => Clear(F::MS_NOATIME),
        "nodiratime" => Set(F::MS_NODIRATIME),
        "diratime" => Clear(F::MS_NODIRATIME),
        "relatime" => Set(F::MS_RELATIME),
        "norelatime" => Clear(F::MS_RELATIME),
        "strictatime" => Set(F::MS_STRICTATIME),
        "nostrictatime" => Clear(F::MS_STRICTATIME),
        "lazytime" => Set(F::MS_LAZYTIME),
        "nolazytime" => Clear(F::MS_LAZYTIME),
        "bind" => Set(F::MS_BIND),
        "rbind" => Set(F::MS_BIND | F::MS_REC),
        "private" => Propagation(F::MS_PRIVATE),
        "rprivate" => Propagation(F::MS_PRIVATE | F::MS_REC),
        "shared" => Propagation(F::MS_SHARED),
        "rshared" => Propagation(F::MS_SHARED | F::MS_REC),
        "slave" => Propagation(F::MS_SLAVE),
        "rslave" => Propagation(F::MS_SLAVE | F::MS_REC),
        "unbindable" => Propagation(F::MS_UNBINDABLE),
        "runbindable" => Propagation(F::MS_UNBINDABLE | F::MS_REC),
        "rro" => RecSet(MOUNT_ATTR_RDONLY),
        "rrw" => RecClear(MOUNT_ATTR_RDONLY),
        "rnosuid" => RecSet(MOUNT_ATTR_NOSUID),
        "rsuid" => RecClear(MOUNT_ATTR_NOSUID),
        "rnodev" => RecSet(MOUNT_ATTR_NODEV),
        "rdev" => RecClear(MOUNT_ATTR_NODEV),
        "rnoexec" => RecSet(MOUNT_ATTR_NOEXEC),
        "rexec" => RecClear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecSet(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecClear(MOUNT_ATTR_NODIRATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => RecAtime(MOUNT_ATTR_RELATIME),
        "rnoatime" => RecAtime(MOUNT_ATTR_NOATIME),
        "rstrictatime" | "rnorelatime" => RecAtime(MOUNT_ATTR_STRICTATIME),
        "tmpcopyup" => CopyUp,
        "idmap" | "ridmap" => Unsupported,
        _ => return None,
    })
}

/// Every option word this runtime recognises, for `features` (mountOptions).
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Parses OCI mount options. Unknown words become filesystem data, as in runc.
pub fn parse(options: &[String]) -> Result<MountOptions, UnsupportedOption> {
    let atime_flags = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    let mut o = MountOptions::default();
    for word in options {
        match classify(word) {
            Some(Word::Set(f)) => {
                if f.intersects(atime_flags) {
                    o.atime_given = true;
                }
                o.flags |= f;
                o.cleared -= f;
            }
            Some(Word::Clear(f)) => {
                if f.intersects(atime_flags) {
                    o.atime_given = true;
                }
                o.flags -= f;
                o.cleared |= f;
            }
            Some(Word::Propagation(f)) => o.propagation.push(f),
            Some(Word::RecSet(bit)) => o.recursive.set_bit(bit),
            Some(Word::RecClear(bit)) => o.recursive.clear_bit(bit),
            Some(Word::RecAtime(v)) => o.recursive.set_atime(v),
            Some(Word::Nothing) => {}
            Some(Word::CopyUp) => o.copy_up = true,
            Some(Word::Unsupported) => return Err(UnsupportedOption(word.clone())),
            None => o.data.push(word.clone()),
        }
    }
    Ok(o)
}

/// Parses linux.rootfsPropagation.
pub fn parse_propagation(value: &str) -> Option<MsFlags> {
    match classify(value) {
        Some(Word::Propagation(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MsFlags as F;

    fn p(words: &[&str]) -> MountOptions {
        let v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        parse(&v).expect("parse")
    }

    #[test]
    fn known_options_are_all_recognised() {
        for w in KNOWN_OPTIONS {
            assert!(
                !matches!(classify(w), None | Some(Word::Unsupported)),
                "{w}"
            );
        }
        assert!(classify("size=1m").is_none());
    }

    #[test]
    fn flag_words() {
        let table: &[(&[&str], MsFlags, MsFlags)] = &[
            (&["ro"], F::MS_RDONLY, F::empty()),
            (&["ro", "rw"], F::empty(), F::MS_RDONLY),
            (&["rw", "ro"], F::MS_RDONLY, F::empty()),
            (
                &["nosuid", "nodev", "noexec"],
                F::MS_NOSUID | F::MS_NODEV | F::MS_NOEXEC,
                F::empty(),
            ),
            (
                &["suid", "dev", "exec"],
                F::empty(),
                F::MS_NOSUID | F::MS_NODEV | F::MS_NOEXEC,
            ),
            (&["sync"], F::MS_SYNCHRONOUS, F::empty()),
            (&["sync", "async"], F::empty(), F::MS_SYNCHRONOUS),
            (&["dirsync"], F::MS_DIRSYNC, F::empty()),
            (&["remount"], F::MS_REMOUNT, F::empty()),
            (&["mand"], F::MS_MANDLOCK, F::empty()),
            (&["nomand"], F::empty(), F::MS_MANDLOCK),
            (
                &["noatime", "nodiratime"],
                F::MS_NOATIME | F::MS_NODIRATIME,
                F::empty(),
            ),
            (
                &["atime", "diratime"],
                F::empty(),
                F::MS_NOATIME | F::MS_NODIRATIME,
            ),
            (&["relatime"], F::MS_RELATIME, F::empty()),
            (&["norelatime"], F::empty(), F::MS_RELATIME),
            (&["strictatime"], F::MS_STRICTATIME, F::empty()),
            (&["nostrictatime"], F::empty(), F::MS_STRICTATIME),
            (&["lazytime"], F::MS_LAZYTIME, F::empty()),
            (&["nolazytime"], F::empty(), F::MS_LAZYTIME),
            (&["bind"], F::MS_BIND, F::empty()),
            (&["rbind"], F::MS_BIND | F::MS_REC, F::empty()),
            (&["defaults"], F::empty(), F::empty()),
        ];
        for (words, flags, cleared) in table {
            let o = p(words);
            assert_eq!(o.flags, *flags, "{words:?}");
            assert_eq!(o.cleared, *cleared, "{words:?}");
            assert!(o.data.is_empty() && o.propagation.is_empty(), "{words:?}");
        }
    }

    #[test]
    fn propagation_words() {
        let table: &[(&str, MsFlags)] = &[
            ("private", F::MS_PRIVATE),
            ("rprivate", F::MS_PRIVATE | F::MS_REC),
            ("shared", F::MS_SHARED),
            ("rshared", F::MS_SHARED | F::MS_REC),
            ("slave", F::MS_SLAVE),
            ("rslave", F::MS_SLAVE | F::MS_REC),
            ("unbindable", F::MS_UNBINDABLE),
            ("runbindable", F::MS_UNBINDABLE | F::MS_REC),
        ];
        for (w, f) in table {
            assert_eq!(p(&[w]).propagation, vec![*f], "{w}");
            assert_eq!(parse_propagation(w), Some(*f), "{w}");
        }
        assert_eq!(parse_propagation("ro"), None);
        assert_eq!(parse_propagation("bogus"), None);
        assert_eq!(
            p(&["rbind", "rprivate", "shared"]).propagation,
            vec![F::MS_PRIVATE | F::MS_REC, F::MS_SHARED]
        );
    }

    #[test]
    fn recursive_words() {
        let table: &[(&[&str], u64, u64)] = &[
            (&["rro"], MOUNT_ATTR_RDONLY, 0),
            (&["rrw"], 0, MOUNT_ATTR_RDONLY),
            (&["rro", "rrw"], 0, MOUNT_ATTR_RDONLY),
            (
                &["rnosuid", "rnodev", "rnoexec"],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                0,
            ),
            (
                &["rsuid", "rdev", "rexec"],
                0,
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            ),
            (&["rnodiratime"], MOUNT_ATTR_NODIRATIME, 0),
            (&["rdiratime"], 0, MOUNT_ATTR_NODIRATIME),
            (&["rnoatime"], MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME),
            (&["rstrictatime"], MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME),
            (&["rrelatime"], MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME),
            (
                &["rnoatime", "rrelatime"],
                MOUNT_ATTR_RELATIME,
                MOUNT_ATTR_ATIME,
            ),
            (&["ratime"], MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME),
            (&["rnorelatime"], MOUNT_ATTR_STRICTATIME, MOUNT_ATTR_ATIME),
            (&["rnostrictatime"], MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME),
        ];
        for (words, set, clr) in table {
            let o = p(words);
            assert_eq!(
                o.recursive,
                AttrChange {
                    set: *set,
                    clr: *clr
                },
                "{words:?}"
            );
            assert!(o.flags.is_empty(), "{words:?}");
        }
    }

    #[test]
    fn unknown_words_are_data_and_idmap_is_refused() {
        let o = p(&[
            "nosuid",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(o.flags, F::MS_NOSUID);
        assert_eq!(
            o.data_string().as_deref(),
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
        );
        assert_eq!(p(&["ro"]).data_string(), None);
        for w in ["idmap", "ridmap"] {
            assert_eq!(
                parse(&[w.to_string()]),
                Err(UnsupportedOption(w.to_string()))
            );
        }
    }

    #[test]
    fn bind_attr_change_keeps_unrequested_flags() {
        let o = p(&["rbind", "ro", "nosuid"]);
        assert!(o.is_recursive_bind());
        assert_eq!(
            o.bind_attr_change(),
            AttrChange {
                set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                clr: 0
            }
        );
        let o = p(&["bind", "rw", "dev", "noatime"]);
        assert_eq!(
            o.bind_attr_change(),
            AttrChange {
                set: MOUNT_ATTR_NOATIME,
                clr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_ATIME
            }
        );
        assert!(p(&["bind"]).bind_attr_change().is_empty());
        assert_eq!(
            p(&["bind", "atime"]).bind_attr_change(),
            AttrChange {
                set: MOUNT_ATTR_RELATIME,
                clr: MOUNT_ATTR_ATIME
            }
        );
    }
}
