//! A kernel package of either format, told apart by its first bytes: its
//! files offered to a [`Picker`] by the reader of its format ([`super::deb`],
//! [`super::rpm`]).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::contents::{Found, Picker};

/// Extracts what [`Found`] lists from a `.deb` or an `.rpm` (told apart by
/// their first bytes) into `out`.
pub(crate) fn extract(package: &Path, out: &Path) -> std::io::Result<Found> {
    let mut picker = Picker::new(out);
    offer_all(package, &mut picker)?;
    Ok(picker.finish())
}

/// Offers every regular file of a `.deb` or an `.rpm` to `picker`.
pub(crate) fn offer_all(package: &Path, picker: &mut Picker) -> std::io::Result<()> {
    let mut magic = [0u8; 8];
    let n = File::open(package)?.read(&mut magic)?;
    if magic[..n].starts_with(super::rpm::MAGIC) {
        super::rpm::offer_files(package, picker)
    } else {
        super::deb::offer_files(package, picker)
    }
}
