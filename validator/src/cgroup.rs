//! Where cgroup programs attach. In a guest, the root of the cgroup v2
//! hierarchy: every process is below it, so the workload passes the
//! programs. Anywhere else (the pre-load gate on a host), a cgroup of their
//! own, created empty under the root and removed afterwards: the kernel
//! judges the attach the same way, and no process of the host passes a
//! program that is being checked. Fire mode moves this process into it while
//! the trigger runs, and back.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where cgroup programs attach.
pub(crate) enum CgroupTarget {
    /// The hierarchy's root (a throw-away guest).
    Root(File),
    /// A cgroup made for the programs, removed when this is dropped.
    Own(OwnCgroup),
}

impl CgroupTarget {
    /// The target for `site`; `None` where no cgroup2 is mounted.
    pub(crate) fn new(site: crate::Site) -> Option<io::Result<CgroupTarget>> {
        let root = cgroup2_root()?;
        Some(match site {
            crate::Site::Guest => File::open(&root).map(CgroupTarget::Root),
            crate::Site::Host => OwnCgroup::create(&root).map(CgroupTarget::Own),
        })
    }

    /// The cgroup's directory, to attach to.
    pub(crate) fn dir(&self) -> &File {
        match self {
            CgroupTarget::Root(dir) => dir,
            CgroupTarget::Own(own) => &own.dir,
        }
    }
}

/// Removes the cgroups checks that are gone left behind
/// (`bpfcompat-check-<pid>-<n>` whose PID no longer runs): what still runs
/// in one (a killed check's trigger) is killed first (`cgroup.kill`, Linux
/// 5.14). Returns their paths.
pub(crate) fn sweep_dead() -> Vec<String> {
    let Some(root) = cgroup2_root() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if bpfcompat_engine::process_group::left_by_the_dead(&name, &["bpfcompat-check-"]).is_none()
        {
            continue;
        }
        let path = e.path();
        let _ = std::fs::write(path.join("cgroup.kill"), b"1");
        // The kernel empties it asynchronously: a few tries.
        for _ in 0..20 {
            if std::fs::remove_dir(&path).is_ok() {
                removed.push(path.display().to_string());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    removed
}

/// A cgroup of the programs' own under the cgroup2 root.
pub(crate) struct OwnCgroup {
    path: PathBuf,
    dir: File,
}

impl OwnCgroup {
    fn create(root: &Path) -> io::Result<OwnCgroup> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("bpfcompat-check-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)?;
        match File::open(&path) {
            Ok(dir) => Ok(OwnCgroup { path, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves this process into the cgroup until the returned guard is
    /// dropped, when it goes back where it was.
    pub(crate) fn enter(&self) -> io::Result<Inside> {
        // Made directly under the root.
        let root = self.path.parent().unwrap_or(&self.path);
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
        let back = own_cgroup_in(&proc_cgroup)
            .map(|rel| root.join(rel))
            .ok_or_else(|| io::Error::other("this process is in no cgroup v2 cgroup"))?;
        move_here(&self.path)?;
        Ok(Inside { back })
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        // Emptied of links first (their guards drop before this one); a
        // cgroup whose last process only just left may still be busy.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// This process inside an [`OwnCgroup`]; dropping it moves the process back.
pub(crate) struct Inside {
    back: PathBuf,
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = move_here(&self.back);
    }
}

/// Moves this process (all its threads) into the cgroup at `path`.
fn move_here(path: &Path) -> io::Result<()> {
    std::fs::write(path.join("cgroup.procs"), std::process::id().to_string())
}

/// The cgroup v2 path of this process relative to the root, from
/// `/proc/self/cgroup` (its `0::` line).
fn own_cgroup_in(proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let rel = l.strip_prefix("0::")?;
        // `(deleted)` and other decorations are not a path to go back to.
        (rel.starts_with('/') && !rel.contains(' ')).then(|| rel.trim_start_matches('/').into())
    })
}

/// The root of the cgroup v2 hierarchy: `/sys/fs/cgroup` in the guest; on a
/// host with the hybrid layout (v1 controllers at /sys/fs/cgroup, v2 at
/// `/sys/fs/cgroup/unified`) the latter. `None` where no cgroup2 is mounted.
pub(crate) fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    cgroup2_in(&mounts)
}

/// The first cgroup2 mount point of a mounts table (`/proc/self/mounts`).
fn cgroup2_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let dir = fields.nth(1)?;
        // Mount points with spaces are octal-escaped; none is ours to guess.
        (fields.next()? == "cgroup2" && !dir.contains('\\')).then(|| dir.into())
    })
}

#[cfg(test)]
mod tests {
    use super::{cgroup2_in, own_cgroup_in};

    #[test]
    fn cgroup_programs_attach_where_cgroup2_is_mounted() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_in(hybrid), Some("/sys/fs/cgroup/unified".into()));
        let unified = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(cgroup2_in(unified), Some("/sys/fs/cgroup".into()));
        assert_eq!(
            cgroup2_in("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
    }

    #[test]
    fn the_cgroup_to_go_back_to_is_the_v2_line() {
        let hybrid = "12:cpu,cpuacct:/user.slice\n0::/user.slice/user-0.slice/session-3.scope\n";
        assert_eq!(
            own_cgroup_in(hybrid),
            Some("user.slice/user-0.slice/session-3.scope".into())
        );
        assert_eq!(own_cgroup_in("0::/\n"), Some("".into()));
        assert_eq!(own_cgroup_in("0::/gone (deleted)\n"), None);
        assert_eq!(own_cgroup_in("3:memory:/x\n"), None);
    }
}
