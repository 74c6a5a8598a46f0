//! Kernel matrices (`matrices/*.toml`) and the lock file that pins each
//! profile to one exact package (`kernels.lock`).
//!
//! A profile names *where* a kernel comes from (archive, suites, a package
//! pattern); the lock says *which* package that was when `kernels update` last
//! ran. Runs only ever use the lock, so a matrix run is reproducible until
//! somebody re-pins it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::errors::MatrixError;
use crate::safe::{Sha256Hex, check_archive_path, check_name, check_version, is_safe_name};

/// The matrix shipped with bpfcompat (`--matrix default`).
pub(crate) const DEFAULT_MATRIX: &str = include_str!("../matrices/default.toml");
/// The lock of the shipped matrix.
pub(crate) const DEFAULT_LOCK: &str = include_str!("../matrices/kernels.lock");

/// The shipped catalogue (`--matrix all`): every kernel series the archives
/// serve that the project has booted.
pub(crate) const ALL_MATRIX: &str = include_str!("../matrices/all.toml");
/// The catalogue's lock.
pub(crate) const ALL_LOCK: &str = include_str!("../matrices/all.lock");

/// The pins of the whole catalogue (`--matrix all`).
pub fn catalogue() -> Lock {
    toml::from_str(ALL_LOCK).expect("the shipped catalogue's lock parses (tested)")
}

/// What to say of a kernel name the matrix lacks: the name it has that
/// this one is a slip of (case, a character or two), else that the
/// catalogue has it (`--matrix all`), else nothing.
fn suggestion(name: &str, known: &[&str]) -> String {
    let close = known
        .iter()
        .map(|k| (strsim::levenshtein(&name.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= 2)
        .min();
    if let Some((_, k)) = close {
        return format!(": did you mean `{k}`?");
    }
    if catalogue().get(name).is_some() {
        return format!(
            ": `{name}` is in the catalogue; run it with `--matrix all --kernel {name}`"
        );
    }
    String::new()
}

/// The names of the shipped matrices.
pub const SHIPPED: &[&str] = &["default", "all", "rpm"];

/// The RPM distributions (`--matrix rpm`): shipped unpinned, never booted
/// by the project (their repositories are out of its reach).
pub(crate) const RPM_MATRIX: &str = include_str!("../matrices/rpm.toml");

/// A kernel matrix: the kernels a run validates on.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The profiles, in the order reports show them.
    #[serde(rename = "kernel")]
    pub kernels: Vec<Profile>,
    /// Where the matrix came from (a path, or `built-in default`).
    #[serde(skip)]
    pub origin: String,
    /// The lock that pins the profiles.
    #[serde(skip)]
    pub lock: Lock,
    /// Where `kernels update` writes the lock; `None` for the built-in matrix.
    #[serde(skip)]
    pub lock_path: Option<PathBuf>,
}

/// One kernel of a matrix.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short stable name used on the command line and in reports, e.g. `debian-12-6.1`.
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// Where to look, in order of preference: `archive:suite`, e.g.
    /// `debian-security:bookworm-security`. The newest match over all wins.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Binary package pattern; `*` matches one run of characters without `-`.
    #[serde(default)]
    pub package: String,
    /// How the sources' archives are laid out: `deb` (apt, the default) or
    /// `rpm` (dnf/yum repositories, whose suite is the repository's path,
    /// e.g. `almalinux:9/BaseOS/x86_64/os`).
    #[serde(default)]
    pub format: Format,
    /// Your own kernel instead of an archive's: a `.deb`, an `.rpm` or a `vmlinuz`
    /// (bzImage), relative to the matrix file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Your own kernel at an `http(s)` URL (a `.deb` or a `vmlinuz`), with
    /// its `sha256`.
    #[serde(default)]
    pub url: Option<String>,
    /// The sha256 of `url`.
    #[serde(default)]
    pub sha256: Option<Sha256Hex>,
    /// With a `vmlinuz`: its build configuration (`.config`), relative to the
    /// matrix file, for the verdicts that read it.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// With your own kernel: a directory of its modules (a
    /// `lib/modules/<release>` tree or loose `.ko[.xz|.zst]` files),
    /// relative to the matrix file; the guest modules are taken from it.
    #[serde(default)]
    pub modules_dir: Option<PathBuf>,
    /// Patterns of the packages that carry the kernel's modules where the
    /// image package does not (Ubuntu's `linux-modules-*`, Debian 7.x's
    /// `linux-modules-*`): pinned at the image's version, from its suite.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Whether a failure on this kernel fails the run (default: true).
    #[serde(default = "yes")]
    pub required: bool,
    /// The profile was never booted by the bpfcompat project (its archive
    /// is out of the project's reach); listings say so.
    #[serde(default)]
    pub unverified: bool,
}

fn yes() -> bool {
    true
}

/// How an archive lays out its packages.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An apt archive: `dists/<suite>/main/binary-amd64/Packages`, `.deb`s.
    #[default]
    Deb,
    /// A dnf/yum repository: `<suite>/repodata/repomd.xml`, `.rpm`s.
    Rpm,
}

impl Format {
    /// Whether this is the default (a lock leaves it out).
    pub(crate) fn is_deb(&self) -> bool {
        *self == Format::Deb
    }
}

/// A source of a profile, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Archive key; its mirror comes from `BPFCOMPAT_MIRROR_<ARCHIVE>`.
    pub archive: String,
    /// Suite (distribution) inside that archive.
    pub suite: String,
}

impl Profile {
    /// The profile's sources, parsed.
    pub fn sources(&self) -> Result<Vec<Source>, String> {
        self.sources
            .iter()
            .map(|s| match s.split_once(':') {
                Some((a, suite)) if check_archive_key(a).is_ok() && check_suite(suite).is_ok() => {
                    Ok(Source {
                        archive: a.to_string(),
                        suite: suite.to_string(),
                    })
                }
                _ => Err(format!(
                    "source `{s}` is not `archive:suite` (e.g. `debian:bookworm`, or `almalinux:9/BaseOS/x86_64/os` for an RPM repository)"
                )),
            })
            .collect()
    }
}

/// The lock file: one pinned package per profile name.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Pinned packages, sorted by profile name.
    #[serde(default, rename = "kernel")]
    pub kernels: Vec<Pin>,
}

/// One exact kernel package.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Profile name.
    pub name: String,
    /// The archive's layout (absent: `deb`).
    #[serde(default, skip_serializing_if = "Format::is_deb")]
    pub format: Format,
    /// Archive key the package came from.
    pub archive: String,
    /// Suite it was found in.
    pub suite: String,
    /// Binary package name.
    pub package: String,
    /// Version of the package (Debian's or RPM's `[epoch:]version-release`).
    pub version: String,
    /// Path of the package below the archive root (`pool/...`).
    pub filename: String,
    /// Size of the package in bytes.
    pub size: u64,
    /// SHA-256 of the package, lower-case hex.
    pub sha256: Sha256Hex,
    /// The packages that carry the kernel's modules, when the image's does
    /// not (same archive and suite).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<PackagePin>,
    /// A profile's own kernel: where it is, instead of an archive.
    #[serde(skip)]
    pub own: Option<OwnKernel>,
}

/// Where a profile's own kernel comes from (never from a lock: the matrix
/// names it, and its digest keys the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnKernel {
    /// The file or URL.
    pub from: OwnSource,
    /// A `vmlinuz`'s build configuration.
    pub config: Option<PathBuf>,
    /// The guest modules of its modules directory, by name; their digests
    /// are the pin's `modules`, so a changed module is a new cache entry.
    pub modules: Vec<(String, PathBuf)>,
}

/// A local file or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnSource {
    /// A file on this machine.
    File(PathBuf),
    /// An `http(s)` URL.
    Url(String),
}

/// One exact package of an archive.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackagePin {
    /// Binary package name.
    pub package: String,
    /// Version of the package (Debian's or RPM's `[epoch:]version-release`).
    pub version: String,
    /// Path of the package below the archive root (`pool/...`).
    pub filename: String,
    /// Size of the package in bytes.
    pub size: u64,
    /// SHA-256 of the package, lower-case hex.
    pub sha256: Sha256Hex,
}

impl PackagePin {
    /// Checks the fields that become part of a path or URL.
    pub fn validate(&self) -> Result<(), String> {
        check_name("the package", &self.package)?;
        check_version(&self.version)?;
        check_archive_path(&self.filename)
    }
}

impl Pin {
    /// Checks every field that becomes part of a path or URL (digests are
    /// checked by their type when the lock is parsed).
    pub fn validate(&self) -> Result<(), String> {
        check_name("the profile name", &self.name)?;
        check_archive_key(&self.archive)?;
        check_suite(&self.suite)?;
        check_name("the package", &self.package)?;
        check_version(&self.version)?;
        check_archive_path(&self.filename)?;
        self.modules.iter().try_for_each(PackagePin::validate)
    }

    /// The key of this kernel's cache entry: the image's digest, or, with
    /// module packages, the digest of all the packages' digests, so an entry
    /// is never used for another set of packages.
    pub fn entry_key(&self) -> Sha256Hex {
        if self.modules.is_empty() {
            return self.sha256.clone();
        }
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.sha256.as_str());
        for m in &self.modules {
            h.update(b":");
            h.update(m.sha256.as_str());
        }
        Sha256Hex::try_from(hex::encode(h.finalize())).expect("a digest is 64 hex digits")
    }
}

/// A suite is a name (`bookworm-security`) or, for an RPM repository, a
/// relative path (`9/BaseOS/x86_64/os`).
fn check_suite(s: &str) -> Result<(), String> {
    if is_safe_name(s) || check_archive_path(s).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "the suite `{}` must be a name or a relative path of names",
            s.escape_debug()
        ))
    }
}

/// An archive key names a `BPFCOMPAT_MIRROR_<ARCHIVE>` variable.
fn check_archive_key(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        Ok(())
    } else {
        Err(format!(
            "the archive `{}` must be lower-case letters and `-`",
            s.escape_debug()
        ))
    }
}

impl Lock {
    /// The pin of a profile.
    pub fn get(&self, name: &str) -> Option<&Pin> {
        self.kernels.iter().find(|p| p.name == name)
    }

    /// Replaces (or adds) a pin, keeping the file sorted.
    pub fn set(&mut self, pin: Pin) {
        self.kernels.retain(|p| p.name != pin.name);
        self.kernels.push(pin);
        self.kernels.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The lock as the text of a `kernels.lock` file.
    pub fn to_toml(&self) -> String {
        format!(
            "# Pinned by `cargo bpfcompat kernels update`; runs use only these packages.\n\n{}",
            toml::to_string(self).expect("a lock always serializes")
        )
    }
}

/// The most a guest module named by an own kernel's `modules_dir` may be.
const MODULE_FILE_LIMIT: u64 = 64 << 20;

/// A path a matrix names (`file`, `config`, `modules_dir`), confined to the
/// matrix's directory ([`crate::safe::confined`]): a matrix may come from a
/// pull request, and `config = "/etc/shadow"` must not be copied into the
/// cache and the evidence.
fn confined(
    dir: &Path,
    rel: &Path,
    key: &str,
    origin: &str,
    profile: &str,
) -> Result<PathBuf, MatrixError> {
    crate::safe::confined(dir, rel, key).map_err(|message| MatrixError::Invalid {
        origin: origin.to_string(),
        profile: profile.to_string(),
        message,
    })
}

impl Matrix {
    /// Loads `default`, `all` or `rpm` (the shipped matrices) or a matrix file; the
    /// lock of `NAME.toml` is `NAME.lock` beside it when that exists, else
    /// `kernels.lock` (missing means nothing is pinned yet).
    pub fn load(name_or_path: &str) -> Result<Matrix, MatrixError> {
        let shipped = match name_or_path {
            "default" => Some((DEFAULT_MATRIX, DEFAULT_LOCK, "built-in default matrix")),
            "all" => Some((ALL_MATRIX, ALL_LOCK, "built-in catalogue (all)")),
            "rpm" => Some((RPM_MATRIX, "", "built-in RPM distributions (rpm)")),
            _ => None,
        };
        if let Some((matrix, lock, origin)) = shipped {
            let mut m = Matrix::parse(matrix, origin)?;
            m.lock = parse_lock(lock, &format!("the lock of the {origin}"))?;
            return Ok(m);
        }
        let path = Path::new(name_or_path);
        // A bare word that is no file was meant as a shipped matrix's name.
        if !path.exists() && !name_or_path.contains('/') && path.extension().is_none() {
            return Err(MatrixError::UnknownMatrix {
                name: name_or_path.to_string(),
                shipped: SHIPPED.join(", "),
            });
        }
        let text = crate::safe::read_text_input(path, crate::safe::TEXT_INPUT_LIMIT).map_err(
            |source| MatrixError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        let mut m = Matrix::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let own = path
            .file_stem()
            .map(|stem| dir.join(stem).with_extension("lock"))
            .filter(|p| p.exists());
        let lock_path = own.unwrap_or_else(|| dir.join("kernels.lock"));
        if lock_path.exists() {
            let text = crate::safe::read_text_input(&lock_path, crate::safe::TEXT_INPUT_LIMIT)
                .map_err(|source| MatrixError::Read {
                    path: lock_path.clone(),
                    source,
                })?;
            m.lock = parse_lock(&text, &lock_path.display().to_string())?;
        }
        m.lock_path = Some(lock_path);
        m.pin_own_kernels(dir)?;
        Ok(m)
    }

    /// Pins each own kernel by its digest (a local file's is computed here,
    /// a URL's is the profile's), in place of any lock entry.
    fn pin_own_kernels(&mut self, dir: &Path) -> Result<(), MatrixError> {
        let origin = self.origin.clone();
        for k in &self.kernels {
            let inside = |key: &str, rel: &Path| confined(dir, rel, key, &origin, &k.name);
            let (from, sha256, size) = match (&k.file, &k.url) {
                (Some(file), _) => {
                    let path = inside("file", file)?;
                    let bytes = crate::safe::read_input(&path, crate::safe::KERNEL_FILE_LIMIT)
                        .map_err(|source| MatrixError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    use sha2::Digest;
                    let digest = hex::encode(sha2::Sha256::digest(&bytes));
                    let sha = Sha256Hex::try_from(digest).expect("a digest is 64 hex digits");
                    (OwnSource::File(path), sha, bytes.len() as u64)
                }
                (None, Some(url)) => {
                    let sha = k.sha256.clone().expect("validated: url has sha256");
                    (OwnSource::Url(url.clone()), sha, 0)
                }
                (None, None) => continue,
            };
            let found = match &k.modules_dir {
                Some(d) => {
                    let d = inside("modules_dir", d)?;
                    crate::guest::modules::guest_module_files(&d)
                        .map_err(|source| MatrixError::Read { path: d, source })?
                }
                None => Vec::new(),
            };
            let config = k.config.as_ref().map(|c| inside("config", c)).transpose()?;
            let mut modules = Vec::new();
            for (name, path) in &found {
                let bytes = crate::safe::read_input(path, MODULE_FILE_LIMIT).map_err(|source| {
                    MatrixError::Read {
                        path: path.clone(),
                        source,
                    }
                })?;
                use sha2::Digest;
                let digest = hex::encode(sha2::Sha256::digest(&bytes));
                modules.push(PackagePin {
                    package: name.clone(),
                    version: "own".into(),
                    filename: "own".into(),
                    size: bytes.len() as u64,
                    sha256: Sha256Hex::try_from(digest).expect("a digest is 64 hex digits"),
                });
            }
            let pin = Pin {
                name: k.name.clone(),
                format: Format::Deb,
                archive: "own".into(),
                suite: "own".into(),
                package: k.name.clone(),
                version: "own".into(),
                filename: "own".into(),
                size,
                sha256,
                modules,
                own: Some(OwnKernel {
                    from,
                    config,
                    modules: found,
                }),
            };
            self.lock.kernels.retain(|p| p.name != k.name);
            self.lock.kernels.push(pin);
        }
        Ok(())
    }

    /// Parses matrix text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Matrix, MatrixError> {
        let mut m: Matrix = toml::from_str(text).map_err(|e| MatrixError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        m.origin = origin.to_string();
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), MatrixError> {
        let invalid = |name: &str, message: String| MatrixError::Invalid {
            origin: self.origin.clone(),
            profile: name.to_string(),
            message,
        };
        if self.kernels.is_empty() {
            return Err(invalid("-", "the matrix has no [[kernel]] entry".into()));
        }
        let mut seen = BTreeSet::new();
        for k in &self.kernels {
            check_name("the name", &k.name)
                .map_err(|m| invalid(&k.name.escape_debug().to_string(), m))?;
            if !seen.insert(&k.name) {
                return Err(invalid(&k.name, "the name appears twice".into()));
            }
            match (&k.file, &k.url) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &k.name,
                        "names both `file` and `url`: one kernel".into(),
                    ));
                }
                (Some(_), None) | (None, Some(_)) => {
                    if !k.sources.is_empty() || !k.package.is_empty() || !k.modules.is_empty() {
                        return Err(invalid(
                            &k.name,
                            "an own kernel (`file` or `url`) takes no `sources`, `package` or `modules`".into(),
                        ));
                    }
                    if let Some(url) = &k.url {
                        if !(url.starts_with("https://") || url.starts_with("http://")) {
                            return Err(invalid(&k.name, format!("`url` {url} is not http(s)")));
                        }
                        if k.sha256.is_none() {
                            return Err(invalid(
                                &k.name,
                                "`url` needs its `sha256` (sha256sum of the file)".into(),
                            ));
                        }
                    }
                    continue;
                }
                (None, None) => {}
            }
            if k.config.is_some() || k.sha256.is_some() || k.modules_dir.is_some() {
                return Err(invalid(
                    &k.name,
                    "`config`, `modules_dir` and `sha256` go with an own kernel (`file` or `url`)"
                        .into(),
                ));
            }
            if k.sources.is_empty() {
                return Err(invalid(&k.name, "`sources` is empty".into()));
            }
            k.sources().map_err(|m| invalid(&k.name, m))?;
            if k.package.is_empty() {
                return Err(invalid(&k.name, "`package` is empty".into()));
            }
            if k.modules.iter().any(|m| m.is_empty() || m == &k.package) {
                return Err(invalid(
                    &k.name,
                    "`modules` names an empty pattern or the image's own".into(),
                ));
            }
        }
        Ok(())
    }

    /// The profile called `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.kernels.iter().find(|k| k.name == name)
    }

    /// Keeps only the named profiles (in matrix order); an unknown name is an
    /// error that lists the known ones.
    pub fn select(&mut self, names: &[String]) -> Result<(), MatrixError> {
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            if self.profile(n).is_none() {
                let known: Vec<&str> = self.kernels.iter().map(|k| k.name.as_str()).collect();
                return Err(MatrixError::UnknownKernel {
                    name: n.clone(),
                    origin: self.origin.clone(),
                    suggestion: suggestion(n, &known),
                    known: known.join(", "),
                });
            }
        }
        self.kernels.retain(|k| names.contains(&k.name));
        Ok(())
    }
}

/// Parses a lock; every pin is checked here, where the file enters.
pub(crate) fn parse_lock(text: &str, origin: &str) -> Result<Lock, MatrixError> {
    let lock: Lock = toml::from_str(text).map_err(|e| MatrixError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    for pin in &lock.kernels {
        pin.validate().map_err(|message| MatrixError::Invalid {
            origin: origin.to_string(),
            profile: pin.name.escape_debug().to_string(),
            message,
        })?;
    }
    Ok(lock)
}

/// Whether a package name matches a profile pattern: `*` stands for one run of
/// characters without `-`, so `linux-image-5.10.0-*-cloud-amd64` never matches
/// a `-dbg` or `-unsigned` sibling.
pub(crate) fn package_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(after) = name.strip_prefix(head) else {
                return false;
            };
            // Try every split of a run without '-'.
            let run_end = after.find('-').unwrap_or(after.len());
            (0..=run_end).any(|i| package_matches(rest, &after[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_matrices_parse_and_every_profile_is_pinned() {
        let default = Matrix::load("default").unwrap();
        assert!(default.kernels.len() >= 8);
        let all = Matrix::load("all").unwrap();
        assert!(all.kernels.len() >= 40, "{}", all.kernels.len());
        for m in [default, all] {
            every_profile_is_pinned(&m);
            assert!(m.kernels.iter().all(|k| !k.unverified));
        }
        // Out of the project's reach: shipped unpinned, and marked so.
        let rpm = Matrix::load("rpm").unwrap();
        assert!(rpm.kernels.len() >= 10);
        assert!(rpm.lock.kernels.is_empty());
        for k in &rpm.kernels {
            assert!(k.unverified && k.format == Format::Rpm, "{}", k.name);
            k.sources().unwrap();
        }
    }

    #[test]
    fn catalogue_names_say_distribution_release_series_and_flavour() {
        let all = Matrix::load("all").unwrap();
        let default = Matrix::load("default").unwrap();
        for k in &all.kernels {
            let parts: Vec<&str> = k.name.split('-').collect();
            let ok = match parts.as_slice() {
                ["ubuntu", release, series] | ["ubuntu", release, series, _] => {
                    release.contains('.') && series.contains('.')
                }
                ["debian", "sid"] => true,
                ["debian", n, rest @ ..] => {
                    n.parse::<u32>().is_ok() && matches!(rest, [_] | [_, "backports"])
                }
                _ => false,
            };
            assert!(ok, "{}", k.name);
        }
        // A profile in both shipped matrices is the same kernel in both.
        for k in &default.kernels {
            if let Some(same) = all.lock.get(&k.name) {
                assert_eq!(Some(same), default.lock.get(&k.name), "{}", k.name);
            }
        }
    }

    #[test]
    fn an_own_kernels_modules_directory_keys_its_cache_entry() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("vmlinuz"), b"IMAGE").unwrap();
        let sched = d.join("mods/lib/modules/6.6.0/kernel/net/sched");
        std::fs::create_dir_all(&sched).unwrap();
        std::fs::write(sched.join("cls_bpf.ko"), b"CLS").unwrap();
        std::fs::write(sched.join("sch_ingress.ko.xz"), b"ING").unwrap();
        std::fs::write(sched.join("ext4.ko"), b"EXT4").unwrap();
        let toml = "[[kernel]]\nname = \"mine\"\nfile = \"vmlinuz\"\nmodules_dir = \"mods\"\n";
        std::fs::write(d.join("m.toml"), toml).unwrap();
        let load = || Matrix::load(d.join("m.toml").to_str().unwrap()).unwrap();
        let m = load();
        let pin = m.lock.get("mine").unwrap();
        let names: Vec<&str> = pin.modules.iter().map(|m| m.package.as_str()).collect();
        assert_eq!(names, ["sch_ingress", "cls_bpf"]);
        let key = pin.entry_key();
        std::fs::write(sched.join("cls_bpf.ko"), b"CLS2").unwrap();
        assert_ne!(load().lock.get("mine").unwrap().entry_key(), key);

        let bad = "[[kernel]]\nname = \"k\"\nsources = [\"debian:x\"]\npackage = \"p\"\nmodules_dir = \"mods\"\n";
        let err = Matrix::parse(bad, "m.toml").unwrap_err().to_string();
        assert!(err.contains("`modules_dir`"), "{err}");
    }

    #[test]
    fn an_own_kernels_paths_stay_inside_the_matrixs_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("m");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("vmlinuz"), b"IMAGE").unwrap();
        std::fs::write(dir.path().join("secret"), b"SECRET").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), d.join("config")).unwrap();
        let load = |extra: &str| {
            let toml = format!("[[kernel]]\nname = \"mine\"\nfile = \"vmlinuz\"\n{extra}");
            std::fs::write(d.join("m.toml"), toml).unwrap();
            Matrix::load(d.join("m.toml").to_str().unwrap())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(load(""), Ok(()));
        for (extra, says) in [
            ("config = \"/etc/shadow\"", "without `..`"),
            ("config = \"../secret\"", "without `..`"),
            ("modules_dir = \"/lib/modules\"", "`modules_dir"),
            ("config = \"config\"", "through a link"),
        ] {
            let e = load(extra).unwrap_err();
            assert!(
                e.contains(says) && e.contains("kernel `mine`"),
                "{extra}: {e}"
            );
        }
    }

    fn every_profile_is_pinned(m: &Matrix) {
        for k in &m.kernels {
            let pin = m
                .lock
                .get(&k.name)
                .unwrap_or_else(|| panic!("{} unpinned", k.name));
            assert!(package_matches(&k.package, &pin.package), "{}", k.name);
            pin.validate().unwrap();
            // Each module package is pinned, at the image's version.
            assert_eq!(pin.modules.len(), k.modules.len(), "{}", k.name);
            for (pattern, m) in k.modules.iter().zip(&pin.modules) {
                assert!(package_matches(pattern, &m.package), "{}", k.name);
                assert_eq!(m.version, pin.version, "{}", k.name);
            }
        }
    }

    #[test]
    fn module_packages_are_checked_and_change_the_cache_key() {
        let module = |filename: &str| {
            format!(
                "[[kernel.modules]]\npackage = \"linux-modules-1\"\nversion = \"1\"\nfilename = \"{filename}\"\nsize = 1\nsha256 = \"{}\"\n",
                "b".repeat(64)
            )
        };
        let plain = parse_lock(&lock_with("name", "k"), "l").unwrap();
        let with = parse_lock(&(lock_with("name", "k") + &module("pool/m.deb")), "l").unwrap();
        let (plain, with) = (&plain.kernels[0], &with.kernels[0]);
        assert_eq!(with.modules[0].package, "linux-modules-1");
        assert_eq!(plain.entry_key(), plain.sha256);
        assert_ne!(with.entry_key(), with.sha256);
        let err = parse_lock(&(lock_with("name", "k") + &module("../../x.deb")), "l")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.deb"), "{err}");
    }

    #[test]
    fn pattern_star_does_not_cross_dashes() {
        let p = "linux-image-5.10.0-*-cloud-amd64";
        assert!(package_matches(p, "linux-image-5.10.0-35-cloud-amd64"));
        assert!(!package_matches(p, "linux-image-5.10.0-35-cloud-amd64-dbg"));
        assert!(!package_matches(p, "linux-image-5.10.0-35-rt-cloud-amd64"));
        let p = "linux-image-6.12.*+deb13-cloud-amd64";
        assert!(package_matches(p, "linux-image-6.12.48+deb13-cloud-amd64"));
        assert!(!package_matches(p, "linux-image-6.12.48+deb13-amd64"));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let text = "[[kernel]]\nname = \"a\"\nsources = [\"debian:bookworm\"]\npackage = \"x\"\nrequird = true\n";
        let err = Matrix::parse(text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("requird"), "{err}");
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn duplicate_names_and_bad_sources_are_rejected() {
        let dup = "[[kernel]]\nname=\"a\"\nsources=[\"debian:x\"]\npackage=\"p\"\n[[kernel]]\nname=\"a\"\nsources=[\"debian:x\"]\npackage=\"p\"\n";
        assert!(
            Matrix::parse(dup, "m")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let bad = "[[kernel]]\nname=\"a\"\nsources=[\"bookworm\"]\npackage=\"p\"\n";
        assert!(
            Matrix::parse(bad, "m")
                .unwrap_err()
                .to_string()
                .contains("archive:suite")
        );
    }

    fn lock_with(field: &str, value: &str) -> String {
        let mut fields = vec![
            ("name", "k".to_string()),
            ("archive", "debian".into()),
            ("suite", "bookworm".into()),
            ("package", "linux-image-1".into()),
            ("version", "1".into()),
            ("filename", "pool/k.deb".into()),
            ("sha256", "a".repeat(64)),
        ];
        for f in &mut fields {
            if f.0 == field {
                f.1 = value.to_string();
            }
        }
        let mut text = "[[kernel]]\nsize = 1\n".to_string();
        for (k, v) in fields {
            text.push_str(&format!("{k} = {}\n", toml::Value::String(v)));
        }
        text
    }

    #[test]
    fn lock_values_that_would_become_paths_are_refused() {
        assert!(parse_lock(&lock_with("name", "k"), "l").is_ok());
        for (field, value) in [
            ("sha256", "../../some-dir"),
            ("sha256", "/tmp/x"),
            ("sha256", &"A".repeat(64)),
            ("name", ".."),
            ("name", "a/b"),
            ("archive", "../x"),
            ("suite", "../../x"),
            ("package", "x/../../y"),
            ("version", "1/2"),
            ("filename", "../../etc/passwd"),
            ("filename", "/etc/passwd"),
        ] {
            let err = parse_lock(&lock_with(field, value), "l")
                .unwrap_err()
                .to_string();
            assert!(err.contains("l"), "{field}={value}: {err}");
        }
        let err = parse_lock(&lock_with("sha256", "../../some-dir"), "kernels.lock")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256") && err.contains("line"), "{err}");
    }

    #[test]
    fn profile_names_cannot_climb() {
        for name in ["..", ".", ".x", "a/b"] {
            let text =
                format!("[[kernel]]\nname=\"{name}\"\nsources=[\"debian:x\"]\npackage=\"p\"\n");
            assert!(Matrix::parse(&text, "m").is_err(), "{name}");
        }
    }

    #[test]
    fn select_rejects_unknown_names_listing_known_ones() {
        let mut m = Matrix::load("default").unwrap();
        let err = m.select(&["nope".into()]).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("debian-12-6.1"),
            "{err}"
        );
        m.select(&["debian-12-6.1".into()]).unwrap();
        assert_eq!(m.kernels.len(), 1);
    }
}
