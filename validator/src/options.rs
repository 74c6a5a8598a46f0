//! What both loaders share: what to do with an object ([`Options`]), where
//! the validation runs ([`Site`]), where the object's bytes come from
//! ([`Source`]), and the seam they sit behind ([`Loader`]).

use std::path::{Path, PathBuf};

use bpfcompat_engine::wire::{Fixups, Mode, ObjectReport};

/// What to do with an object.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How far validation goes (default: load).
    pub mode: Mode,
    /// What the real loader changes before load.
    pub fixups: Fixups,
    /// A BTF file to use instead of the kernel's (kernels without BTF).
    pub btf_custom_path: Option<PathBuf>,
    /// The trigger command for fire mode (default: the built-in workload).
    pub trigger: Option<Vec<String>>,
    /// Leave unsized maps unsized (they fail as `MAP_CONTRACT`) instead of
    /// giving them a neutral size ([`crate::sizing`]).
    pub strict_maps: bool,
    /// Where the validation runs (default: on a host).
    pub site: Site,
    /// Set to stop early: a fire-mode trigger is ended, and objects not yet
    /// validated are left out (see [`crate::validate_all_on_host`]).
    pub cancel: bpfcompat_engine::cancel::Cancel,
}

/// Where the validation runs, which decides where programs whose hook the
/// validator picks are attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Site {
    /// A host (the pre-load gate): programs attach where the host's own
    /// processes and traffic do not pass them (cgroup programs on an empty
    /// cgroup of their own, XDP and tc on a veth pair of their own, removed
    /// afterwards; fire mode moves this process into that cgroup while the
    /// trigger runs), and uprobes to the host's own binaries.
    #[default]
    Host,
    /// One of bpfcompat's throw-away guests: programs attach where the
    /// guest's workload passes them (the root cgroup, `lo`). The loader's
    /// binaries are not in the guest: a uprobe on one is attached to a
    /// function of the validator, which is what the kernel judges.
    Guest,
}

/// Where an object's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A `.bpf.o` file.
    Path(&'a Path),
    /// The object's bytes (e.g. embedded in a loader).
    Bytes(&'a [u8]),
}

/// A loader that judges an object the way a project's own loader of that
/// kind loads it: opened with the configured fix-ups (a fix-up it cannot
/// make is a note of the report, never dropped unsaid), every program
/// loaded, attached and fired as the options ask, each failure with its
/// evidence ([`crate::evidence`]).
pub(crate) trait Loader {
    /// Validates one object on the running kernel; everything it loaded
    /// and attached is released before it returns.
    fn validate(&self, name: &str, source: Source, opts: &Options) -> ObjectReport;
}
