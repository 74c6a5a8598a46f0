//! Reading an `.rpm` in process (the `rpm` crate): its header names each
//! file and its type, its payload (cpio, compressed) holds the contents;
//! regular files are offered to a [`Picker`].

use std::path::Path;

use super::contents::Picker;

/// The first bytes of every RPM package (its lead).
pub(crate) const MAGIC: &[u8] = &[0xed, 0xab, 0xee, 0xdb];

/// Offers every regular file of the package's payload to `picker`.
pub(crate) fn offer_files(path: &Path, picker: &mut Picker) -> std::io::Result<()> {
    let mut reader = rpm::PackageReader::open(path).map_err(std::io::Error::other)?;
    while let Some(mut file) = reader.next_file().map_err(std::io::Error::other)? {
        let regular = matches!(file.metadata.mode().file_type(), rpm::FileType::Regular);
        if regular && file.has_payload() {
            let path = file.metadata.path().to_string_lossy().to_string();
            picker.offer(&path, &mut file)?;
        }
        file.finish()?;
    }
    Ok(())
}
