//! What bpfcompat takes out of a kernel package, whatever its format: the
//! image, its build configuration and the guest modules.
//!
//! Entry paths are matched, never used as output paths: what we write is
//! always `<dir>/vmlinuz`, `<dir>/config` and `<dir>/modules/<name>.ko` for
//! a name of [`GUEST_MODULES`], so a hostile package cannot write elsewhere.
//! The package readers ([`super::deb`], [`super::rpm`]) offer regular files
//! only (no links).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::guest::modules::{GUEST_MODULES, module_file};

/// What one package held.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Found {
    /// The release of the kernel image, when the package holds one.
    pub release: Option<String>,
    pub has_config: bool,
    /// The [`GUEST_MODULES`] found, in that order.
    pub modules: Vec<String>,
    /// The functions of the image (from `System.map`) and of every module.
    pub functions: super::functions::Functions,
    /// Whether the package's Debian changelog was kept (`bisect` reads it).
    pub has_changelog: bool,
}

/// Where an entry keeps its package's Debian changelog, as shipped (gzip).
pub(crate) const CHANGELOG: &str = "changelog.Debian.gz";
/// The most a kept changelog may be.
const CHANGELOG_LIMIT: u64 = 32 << 20;

/// Takes the entries it wants from the files a package reader offers.
pub(crate) struct Picker {
    out: PathBuf,
    found: Found,
    /// Other modules wanted, written to `<out>/target-modules/` (and then
    /// no longer wanted).
    extra: std::collections::BTreeSet<String>,
    /// Whether it takes those and nothing else.
    only_extra: bool,
}

/// Where the modules extracted for programs' targets go in an entry.
pub(crate) const EXTRA_MODULES: &str = "target-modules";

impl Picker {
    pub(crate) fn new(out: &Path) -> Picker {
        Picker {
            out: out.to_path_buf(),
            found: Found::default(),
            extra: Default::default(),
            only_extra: false,
        }
    }

    /// A picker that takes the modules `wanted` and nothing else.
    pub(crate) fn modules(out: &Path, wanted: std::collections::BTreeSet<String>) -> Picker {
        Picker {
            extra: wanted,
            only_extra: true,
            ..Picker::new(out)
        }
    }

    /// Offers a regular file at `path` (relative or absolute, as the
    /// package names it); takes it when it is one of ours.
    pub(crate) fn offer(&mut self, path: &str, content: &mut dyn Read) -> std::io::Result<()> {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if self.only_extra {
            if let Some(Kind::Module(name, compression)) = classify(path)
                && self.extra.remove(&name)
            {
                let elf = crate::safe::read_within(
                    decompressed(content, compression)?,
                    MODULE_LIMIT,
                    &format!("{name}.ko"),
                )?;
                let dir = self.out.join(EXTRA_MODULES);
                crate::private::create_dir_all(&dir)?;
                // Whole or absent: written aside, then renamed.
                let part = dir.join(format!("{name}.ko.part"));
                crate::private::write_file(&part, &elf)?;
                std::fs::rename(&part, dir.join(format!("{name}.ko")))?;
            }
            return Ok(());
        }
        let found = &mut self.found;
        match classify(path) {
            Some(Kind::Image(rel)) if found.release.is_none() => {
                copy(
                    content,
                    &self.out.join("vmlinuz"),
                    super::image_btf::IMAGE_LIMIT,
                )?;
                found.release = Some(rel);
            }
            Some(Kind::Config) if !found.has_config => {
                copy(content, &self.out.join("config"), CONFIG_LIMIT)?;
                found.has_config = true;
            }
            Some(Kind::Changelog) if !found.has_changelog => {
                copy(content, &self.out.join(CHANGELOG), CHANGELOG_LIMIT)?;
                found.has_changelog = true;
            }
            Some(Kind::SystemMap) if !found.functions.image_indexed => {
                found.functions.read_system_map(content)?;
            }
            Some(Kind::Module(name, compression)) => {
                let elf = crate::safe::read_within(
                    decompressed(content, compression)?,
                    MODULE_LIMIT,
                    &format!("{name}.ko"),
                )?;
                found.functions.read_module(&name, &elf);
                if GUEST_MODULES.contains(&name.as_str()) && !found.modules.contains(&name) {
                    let dir = self.out.join("modules");
                    crate::private::create_dir_all(&dir)?;
                    crate::private::write_file(&dir.join(format!("{name}.ko")), &elf)?;
                    found.modules.push(name);
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Found {
        self.found
            .modules
            .sort_by_key(|m| GUEST_MODULES.iter().position(|g| g == m));
        self.found
    }
}

/// A module's bytes as they come out of its compression.
fn decompressed<'a>(
    content: &'a mut dyn Read,
    compression: &str,
) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        "xz" => Box::new(liblzma::read::XzDecoder::new(content)),
        "zst" => Box::new(zstd::Decoder::new(content)?),
        _ => Box::new(content),
    })
}

/// The most its build configuration may be.
const CONFIG_LIMIT: u64 = 16 << 20;
/// The most one guest module may be, decompressed.
const MODULE_LIMIT: u64 = 64 << 20;

/// Writes what a package holds into the cache, within `limit` bytes: a
/// small package cannot fill the disk.
fn copy(content: &mut dyn Read, to: &Path, limit: u64) -> std::io::Result<()> {
    let mut file = crate::private::create_file(to)?;
    let n = std::io::copy(&mut content.take(limit + 1), &mut file)?;
    if n > limit {
        drop(file);
        let _ = std::fs::remove_file(to);
        return Err(std::io::Error::other(format!(
            "{} is larger than the {} MiB it may be: refused",
            to.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            limit >> 20
        )));
    }
    Ok(())
}

enum Kind {
    Image(String),
    Config,
    SystemMap,
    /// `usr/share/doc/<package>/changelog.Debian.gz`.
    Changelog,
    /// A module (by the name the kernel knows it: `-` as `_`), and how it
    /// is compressed (`""`, `xz`, `zst`).
    Module(String, &'static str),
}

/// `…/modules/<rel>/kernel/…/<name>.ko[.xz|.zst]`.
fn module(rest: &str) -> Option<Kind> {
    if rest.split('/').nth(1) != Some("kernel") {
        return None;
    }
    let (name, compression) = module_file(rest.rsplit('/').next()?)?;
    Some(Kind::Module(name, compression))
}

/// `boot/vmlinuz-<rel>` (Debian, Ubuntu, Amazon Linux 2) or
/// `[usr/]lib/modules/<rel>/vmlinuz` (Debian 7.x, the RHEL family,
/// Fedora), the matching config files, and the guest modules.
fn classify(path: &str) -> Option<Kind> {
    if let Some(rel) = path.strip_prefix("boot/vmlinuz-") {
        return Some(Kind::Image(rel.to_string()));
    }
    if path.starts_with("boot/config-") {
        return Some(Kind::Config);
    }
    if path.starts_with("boot/System.map-") {
        return Some(Kind::SystemMap);
    }
    if let Some(doc) = path.strip_prefix("usr/share/doc/")
        && doc
            .split_once('/')
            .is_some_and(|(package, file)| !package.is_empty() && file == CHANGELOG)
    {
        return Some(Kind::Changelog);
    }
    let rest = path
        .strip_prefix("lib/modules/")
        .or_else(|| path.strip_prefix("usr/lib/modules/"))?;
    if let Some(m) = module(rest) {
        return Some(m);
    }
    let (rel, file) = rest.split_once('/')?;
    match file {
        "vmlinuz" => Some(Kind::Image(rel.to_string())),
        "config" => Some(Kind::Config),
        "System.map" => Some(Kind::SystemMap),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer_all(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Found) {
        let out = tempfile::tempdir().unwrap();
        let mut p = Picker::new(out.path());
        for (path, data) in files {
            p.offer(path, &mut &data[..]).unwrap();
        }
        let found = p.finish();
        (out, found)
    }

    #[test]
    fn finds_image_and_config_in_every_layout() {
        let (out, got) = offer_all(&[
            ("./boot/System.map-6.1.0-9-cloud-amd64", b"x"),
            ("./boot/config-6.1.0-9-cloud-amd64", b"CONFIG_BPF=y"),
            ("./boot/vmlinuz-6.1.0-9-cloud-amd64", b"IMG"),
        ]);
        assert_eq!(got.release.as_deref(), Some("6.1.0-9-cloud-amd64"));
        assert!(got.has_config);
        assert!(got.modules.is_empty());
        assert_eq!(std::fs::read(out.path().join("vmlinuz")).unwrap(), b"IMG");

        let (_, got) = offer_all(&[("./usr/lib/modules/7.2.1+deb14-cloud-amd64/vmlinuz", b"NEW")]);
        assert_eq!(got.release.as_deref(), Some("7.2.1+deb14-cloud-amd64"));
        assert!(!got.has_config);

        // The RHEL family's kernel-core, paths as an RPM header names them.
        let (out, got) = offer_all(&[
            ("/lib/modules/5.14.0-427.el9.x86_64/vmlinuz", b"EL"),
            ("/lib/modules/5.14.0-427.el9.x86_64/config", b"CONFIG_BPF=y"),
            ("/lib/modules/5.14.0-427.el9.x86_64/System.map", b"x"),
        ]);
        assert_eq!(got.release.as_deref(), Some("5.14.0-427.el9.x86_64"));
        assert!(got.has_config);
        assert_eq!(
            std::fs::read(out.path().join("config")).unwrap(),
            b"CONFIG_BPF=y"
        );
    }

    #[test]
    fn a_module_that_inflates_past_its_limit_is_refused_and_not_kept() {
        use std::io::Write;
        // A small xz module holding 65 MiB of zeros (a module is at most 64).
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..65 {
            xz.write_all(&zeros).unwrap();
        }
        let small = xz.finish().unwrap();
        assert!(small.len() < 1 << 20);
        let out = tempfile::tempdir().unwrap();
        let mut p = Picker::new(out.path());
        let path = "./lib/modules/6.1.0-9-cloud-amd64/kernel/net/sched/cls_bpf.ko.xz";
        let e = p.offer(path, &mut &small[..]).unwrap_err();
        assert!(e.to_string().contains("larger than the 64 MiB"), "{e}");
        assert!(!out.path().join("modules/cls_bpf.ko").exists());
    }

    #[test]
    fn a_modules_picker_takes_the_wanted_modules_and_nothing_else() {
        let out = tempfile::tempdir().unwrap();
        let wanted = ["xfs".to_string(), "libcrc32c".to_string()].into();
        let mut p = Picker::modules(out.path(), wanted);
        for (path, data) in [
            ("./boot/vmlinuz-6.1.0-9-cloud-amd64", &b"IMG"[..]),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/fs/xfs/xfs.ko",
                b"XFS",
            ),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/lib/libcrc32c.ko",
                b"CRC",
            ),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/drivers/net/veth.ko",
                b"VETH",
            ),
        ] {
            p.offer(path, &mut &data[..]).unwrap();
        }
        let found = p.finish();
        assert_eq!(found, Found::default());
        let extra = out.path().join(EXTRA_MODULES);
        assert_eq!(std::fs::read(extra.join("xfs.ko")).unwrap(), b"XFS");
        assert_eq!(std::fs::read(extra.join("libcrc32c.ko")).unwrap(), b"CRC");
        assert!(!extra.join("veth.ko").exists());
        assert!(!out.path().join("vmlinuz").exists());
    }

    #[test]
    fn a_package_without_image_has_no_release() {
        let (_, got) = offer_all(&[("./usr/share/doc/x/changelog", b"x")]);
        assert_eq!(got.release, None);
    }

    #[test]
    fn guest_modules_are_taken_decompressed_and_nothing_else() {
        let mut xz = Vec::new();
        {
            use std::io::Write;
            let mut e = liblzma::write::XzEncoder::new(&mut xz, 1);
            e.write_all(b"VETH").unwrap();
            e.finish().unwrap();
        }
        let (out, got) = offer_all(&[
            ("./boot/vmlinuz-6.1.0-9-cloud-amd64", b"IMG"),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/net/sched/cls_bpf.ko",
                b"CLS",
            ),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/drivers/net/veth.ko.xz",
                &xz,
            ),
            (
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/fs/ext4/ext4.ko",
                b"EXT4",
            ),
            (
                "/lib/modules/6.1.0-9-cloud-amd64/kernel/net/sched/sch_ingress.ko",
                b"ING",
            ),
        ]);
        assert_eq!(got.modules, ["sch_ingress", "cls_bpf", "veth"]);
        assert_eq!(
            std::fs::read(out.path().join("modules/veth.ko")).unwrap(),
            b"VETH"
        );
        assert!(!out.path().join("modules/ext4.ko").exists());
    }
}
