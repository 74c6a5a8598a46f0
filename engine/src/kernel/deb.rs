//! Reading a `.deb` in process: `ar` → `data.tar.{xz,zst,gz,bz2}` → its
//! regular files, offered to a [`Picker`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::contents::Picker;

/// Offers every regular file of the `.deb`'s data member to `picker`.
pub(crate) fn offer_files(deb: &Path, picker: &mut Picker) -> std::io::Result<()> {
    with_data_tar(deb, |tar| offer_tar(tar, picker))
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
            ".xz" => Box::new(liblzma::read::XzDecoder::new(entry)),
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

fn offer_tar(reader: impl Read, picker: &mut Picker) -> std::io::Result<()> {
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().to_string();
        picker.offer(&path, &mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::package::extract;

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
        let got = extract(&deb, &out).unwrap();
        assert_eq!(got.release.as_deref(), Some("4.4.0-210-generic"));
        assert_eq!(std::fs::read(out.join("vmlinuz")).unwrap(), b"OLD");
    }

    #[test]
    fn links_are_not_offered() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "boot/vmlinuz-1", "/etc/passwd")
            .unwrap();
        let t = b.into_inner().unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut p = Picker::new(out.path());
        offer_tar(&t[..], &mut p).unwrap();
        assert_eq!(p.finish().release, None);
    }
}
