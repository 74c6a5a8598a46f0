//! Taking the kernel image (and its config) out of a `.deb`, in process:
//! `ar` → `data.tar.{xz,zst,gz,bz2}` → the few entries we want.
//!
//! Entry paths are matched, never used as output paths: what we write is
//! always `<dir>/vmlinuz`, `<dir>/config` and `<dir>/modules/<name>.ko` for
//! a name of [`GUEST_MODULES`], so a hostile archive cannot write elsewhere.
//! Only regular files are taken (no links).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Kernel modules a BPF program's hook commonly needs and distros build as
/// modules: the clsact qdisc and the BPF classifier and action for tc, and
/// veth and dummy for test interfaces. Shipped into each guest, in this
/// order, where the kernel's package carries them (none depends on another).
pub const GUEST_MODULES: &[&str] = &["sch_ingress", "cls_bpf", "act_bpf", "veth", "dummy"];

/// What was extracted.
#[derive(Debug, PartialEq)]
pub(crate) struct Extracted {
    pub release: String,
    pub has_config: bool,
    /// The [`GUEST_MODULES`] found, in that order.
    pub modules: Vec<String>,
}

/// Extracts `vmlinuz`, `config` and the guest modules from `deb` into
/// `out`; `None` when the package holds no kernel image.
pub(crate) fn extract_kernel(deb: &Path, out: &Path) -> std::io::Result<Option<Extracted>> {
    let found = with_data_tar(deb, |tar| extract_from_tar(tar, out))?;
    Ok(found.release.map(|release| Extracted {
        release,
        has_config: found.has_config,
        modules: found.modules,
    }))
}

/// Extracts the guest modules of a modules package (`linux-modules-*`) into
/// `out/modules`, and the kernel's config where it ships there (Ubuntu).
pub(crate) fn extract_modules(deb: &Path, out: &Path) -> std::io::Result<Found> {
    with_data_tar(deb, |tar| extract_from_tar(tar, out))
}

/// What one package held.
#[derive(Debug)]
pub(crate) struct Found {
    /// The release of the kernel image, when the package holds one.
    pub release: Option<String>,
    pub has_config: bool,
    /// The [`GUEST_MODULES`] found, in that order.
    pub modules: Vec<String>,
}

/// Runs `f` on the decompressed `data.tar` member of a `.deb`.
fn with_data_tar<T>(
    deb: &Path,
    f: impl FnOnce(Box<dyn Read + '_>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut archive = ar::Archive::new(BufReader::new(File::open(deb)?));
    while let Some(entry) = archive.next_entry() {
        let entry = entry?;
        let name = String::from_utf8_lossy(entry.header().identifier()).to_string();
        let Some(ext) = name.strip_prefix("data.tar") else {
            continue;
        };
        let reader: Box<dyn Read> = match ext {
            ".xz" => Box::new(xz2::read::XzDecoder::new(entry)),
            ".zst" => Box::new(zstd::Decoder::new(entry)?),
            ".gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            // Ubuntu 16.04's 4.4 packages.
            ".bz2" => Box::new(bzip2::read::BzDecoder::new(entry)),
            "" => Box::new(entry),
            other => {
                return Err(std::io::Error::other(format!(
                    "unsupported data member compression `{other}`"
                )));
            }
        };
        return f(reader);
    }
    Err(std::io::Error::other(
        "no data.tar member: not a Debian package",
    ))
}

fn extract_from_tar(reader: impl Read, out: &Path) -> std::io::Result<Found> {
    let mut release = None;
    let mut has_config = false;
    let mut modules = Vec::new();
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        match classify(&path) {
            Some(Kind::Image(rel)) if release.is_none() => {
                entry.unpack(out.join("vmlinuz"))?;
                release = Some(rel);
            }
            Some(Kind::Config) if !has_config => {
                entry.unpack(out.join("config"))?;
                has_config = true;
            }
            Some(Kind::Module(name, compression)) if !modules.contains(&name) => {
                let dir = out.join("modules");
                std::fs::create_dir_all(&dir)?;
                let mut file = File::create(dir.join(format!("{name}.ko")))?;
                let mut reader: Box<dyn Read> = match compression {
                    "xz" => Box::new(xz2::read::XzDecoder::new(&mut entry)),
                    "zst" => Box::new(zstd::Decoder::new(&mut entry)?),
                    _ => Box::new(&mut entry),
                };
                std::io::copy(&mut reader, &mut file)?;
                modules.push(name);
            }
            _ => {}
        }
    }
    modules.sort_by_key(|m| GUEST_MODULES.iter().position(|g| g == m));
    Ok(Found {
        release,
        has_config,
        modules,
    })
}

enum Kind {
    Image(String),
    Config,
    /// One of [`GUEST_MODULES`], and how it is compressed (`""`, `xz`, `zst`).
    Module(String, &'static str),
}

/// `…/modules/<rel>/kernel/…/<name>.ko[.xz|.zst]` for a name of
/// [`GUEST_MODULES`].
fn module(path: &str) -> Option<Kind> {
    let rest = path
        .strip_prefix("lib/modules/")
        .or_else(|| path.strip_prefix("usr/lib/modules/"))?;
    if rest.split('/').nth(1) != Some("kernel") {
        return None;
    }
    let file = rest.rsplit('/').next()?;
    let (stem, compression) = [(".ko", ""), (".ko.xz", "xz"), (".ko.zst", "zst")]
        .iter()
        .find_map(|(ext, c)| file.strip_suffix(ext).map(|s| (s, *c)))?;
    GUEST_MODULES
        .contains(&stem)
        .then(|| Kind::Module(stem.to_string(), compression))
}

/// `boot/vmlinuz-<rel>` or `usr/lib/modules/<rel>/vmlinuz` (Debian 7.x), and
/// the matching config files.
fn classify(path: &str) -> Option<Kind> {
    if let Some(m) = module(path) {
        return Some(m);
    }
    if let Some(rel) = path.strip_prefix("boot/vmlinuz-") {
        return Some(Kind::Image(rel.to_string()));
    }
    if path.starts_with("boot/config-") {
        return Some(Kind::Config);
    }
    let rest = path.strip_prefix("usr/lib/modules/")?;
    let (rel, file) = rest.split_once('/')?;
    match file {
        "vmlinuz" => Some(Kind::Image(rel.to_string())),
        "config" => Some(Kind::Config),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn finds_image_and_config_in_both_layouts() {
        let out = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("./boot/System.map-6.1.0-9-cloud-amd64", b"x"),
            ("./boot/config-6.1.0-9-cloud-amd64", b"CONFIG_BPF=y"),
            ("./boot/vmlinuz-6.1.0-9-cloud-amd64", b"IMG"),
        ]);
        let got = extract_from_tar(&t[..], out.path()).unwrap();
        assert_eq!(got.release.as_deref(), Some("6.1.0-9-cloud-amd64"));
        assert!(got.has_config);
        assert!(got.modules.is_empty());
        assert_eq!(std::fs::read(out.path().join("vmlinuz")).unwrap(), b"IMG");

        let out = tempfile::tempdir().unwrap();
        let t = tar_with(&[("./usr/lib/modules/7.2.1+deb14-cloud-amd64/vmlinuz", b"NEW")]);
        let got = extract_from_tar(&t[..], out.path()).unwrap();
        assert_eq!(got.release.as_deref(), Some("7.2.1+deb14-cloud-amd64"));
        assert!(!got.has_config);
    }

    #[test]
    fn a_bzip2_data_member_is_read_as_ubuntu_16_04_ships_it() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[("./boot/vmlinuz-4.4.0-210-generic", b"OLD")]);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&t).unwrap();
        let data = bz.finish().unwrap();
        let deb = dir.path().join("k.deb");
        let mut ar = ar::Builder::new(std::fs::File::create(&deb).unwrap());
        for (name, bytes) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("data.tar.bz2", &data[..]),
        ] {
            let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            ar.append(&header, bytes).unwrap();
        }
        drop(ar);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let got = extract_kernel(&deb, &out).unwrap().unwrap();
        assert_eq!(got.release, "4.4.0-210-generic");
        assert_eq!(std::fs::read(out.join("vmlinuz")).unwrap(), b"OLD");
    }

    #[test]
    fn package_without_image_has_no_release() {
        let out = tempfile::tempdir().unwrap();
        let t = tar_with(&[("./usr/share/doc/x/changelog", b"x")]);
        assert_eq!(extract_from_tar(&t[..], out.path()).unwrap().release, None);
    }

    #[test]
    fn guest_modules_are_taken_decompressed_and_nothing_else() {
        let out = tempfile::tempdir().unwrap();
        let mut xz = Vec::new();
        {
            use std::io::Write;
            let mut e = xz2::write::XzEncoder::new(&mut xz, 1);
            e.write_all(b"VETH").unwrap();
            e.finish().unwrap();
        }
        let t = tar_with(&[
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
                "./lib/modules/6.1.0-9-cloud-amd64/kernel/net/sched/sch_ingress.ko",
                b"ING",
            ),
        ]);
        let got = extract_from_tar(&t[..], out.path()).unwrap();
        assert_eq!(got.modules, ["sch_ingress", "cls_bpf", "veth"]);
        assert_eq!(
            std::fs::read(out.path().join("modules/veth.ko")).unwrap(),
            b"VETH"
        );
        assert!(!out.path().join("modules/ext4.ko").exists());
    }
}
