//! runc's "tmpcopyup" extension: a tmpfs mounted over a directory of the image starts with
//! a copy of that directory's contents (owners, modes, symlinks and nodes preserved).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

fn kind(mode: u32) -> SFlag {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits())
}

fn perm(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o7777)
}

/// Copies the contents of directory `from` into directory `to` (both opened O_RDONLY),
/// and gives `to` the mode and owner of `from`. Never follows symlinks.
pub fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let st = fstat(from)?;
    fchmod(to, perm(st.st_mode))?;
    fchown(
        to,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    let listing = openat(
        from,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = Dir::from_fd(listing)?;
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        copy_entry(from, to, name)?;
    }
    Ok(())
}

fn open_dir(at: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn copy_entry(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> Result<(), Errno> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    match kind(st.st_mode) {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
            let src = open_dir(from, name)?;
            let dst = open_dir(to, name)?;
            return copy_dir(src.as_fd(), dst.as_fd());
        }
        SFlag::S_IFREG => {
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let (mut src, mut dst) = (File::from(src), File::from(dst));
            std::io::copy(&mut src, &mut dst)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            fchmod(dst.as_fd(), perm(st.st_mode))?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name)?;
            symlinkat(target.as_os_str(), to, name)?;
        }
        other => mknodat(to, name, other, perm(st.st_mode), st.st_rdev)?,
    }
    fchownat(
        to,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if kind(st.st_mode) != SFlag::S_IFLNK && kind(st.st_mode) != SFlag::S_IFREG {
        nix::sys::stat::fchmodat(
            to,
            name,
            perm(st.st_mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn dir_fd(p: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open")
    }

    #[test]
    fn copies_tree_with_modes_and_links() {
        let src = tempfile::tempdir().expect("tempdir");
        let dst = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(src.path().join("sub")).expect("mkdir");
        std::fs::write(src.path().join("sub/f"), b"hello").expect("write");
        std::fs::set_permissions(
            src.path().join("sub/f"),
            std::fs::Permissions::from_mode(0o640),
        )
        .expect("chmod");
        std::fs::set_permissions(
            src.path().join("sub"),
            std::fs::Permissions::from_mode(0o751),
        )
        .expect("chmod");
        std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        symlink("/outside", src.path().join("link")).expect("symlink");
        copy_dir(dir_fd(src.path()).as_fd(), dir_fd(dst.path()).as_fd()).expect("copy");
        assert_eq!(
            std::fs::read(dst.path().join("sub/f")).expect("read"),
            b"hello"
        );
        let mode = |p: &str| {
            std::fs::symlink_metadata(dst.path().join(p))
                .expect("stat")
                .mode()
                & 0o7777
        };
        assert_eq!(mode("sub/f"), 0o640);
        assert_eq!(mode("sub"), 0o751);
        assert_eq!(
            std::fs::metadata(dst.path()).expect("stat").mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).expect("readlink"),
            std::path::Path::new("/outside")
        );
    }
}
