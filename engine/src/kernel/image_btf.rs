//! The function names of a kernel image's own BTF, for packages whose
//! `System.map` is a stub (Debian's points to the `-dbg` package): the
//! bzImage's payload is the kernel's ELF, compressed, and its `.BTF`
//! section lists every function the kernel was built with.
//!
//! All of it is untrusted bytes from a package: offsets are checked, the
//! decompressed kernel is bounded, and anything unexpected gives no names
//! (the kernel is then not indexed) rather than wrong ones.

use std::collections::BTreeSet;
use std::io::Read;

use object::{Object, ObjectSection};

/// The most a package's kernel image may be once out of it (distro images
/// are 5–15 MiB).
pub(crate) const IMAGE_LIMIT: u64 = 256 << 20;

/// The most a decompressed kernel may be (distro kernels are 30–80 MiB).
const KERNEL_LIMIT: u64 = 512 << 20;

/// The functions of the image's BTF; `None` when the image has no BTF or
/// is not a bzImage this reads.
pub(crate) fn functions(bzimage: &[u8]) -> Option<BTreeSet<String>> {
    let elf = decompress(payload(bzimage)?)?;
    let file = object::File::parse(&*elf).ok()?;
    let btf = file.section_by_name(".BTF")?.data().ok()?;
    func_names(btf)
}

/// The compressed kernel inside a bzImage (boot protocol 2.08 or later).
fn payload(image: &[u8]) -> Option<&[u8]> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let setup_sects = match *image.get(0x1f1)? {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    image.get(start..start.checked_add(u32_at(0x24c)?)?)
}

/// The payload decompressed by its magic, within [`KERNEL_LIMIT`].
fn decompress(payload: &[u8]) -> Option<Vec<u8>> {
    let reader: Box<dyn Read + '_> = match payload {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(payload)),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Box::new(liblzma::read::XzDecoder::new(payload)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::Decoder::new(payload).ok()?.single_frame()),
        [b'B', b'Z', b'h', ..] => Box::new(bzip2::read::BzDecoder::new(payload)),
        [0x02, 0x21, 0x4c, 0x18, ..] => return lz4_legacy(&payload[4..]),
        _ => return None,
    };
    let mut out = Vec::new();
    reader.take(KERNEL_LIMIT + 1).read_to_end(&mut out).ok()?;
    (out.len() as u64 <= KERNEL_LIMIT).then_some(out)
}

/// LZ4's legacy format, which the kernel's `lz4 -l` writes: blocks of
/// (little-endian size, block) that each inflate to at most 8 MiB.
fn lz4_legacy(mut data: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 8 << 20;
    let mut out = Vec::new();
    while data.len() >= 4 {
        let size = u32::from_le_bytes(data[..4].try_into().ok()?) as usize;
        // Another stream's magic, or the size the kernel appends: past it.
        if size == 0x184c_2102 {
            data = &data[4..];
            continue;
        }
        let Some(block) = data.get(4..4 + size) else {
            break;
        };
        let mut buf = vec![0u8; BLOCK];
        let n = lz4_flex::block::decompress_into(block, &mut buf).ok()?;
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 > KERNEL_LIMIT {
            return None;
        }
        data = &data[4 + size..];
    }
    (!out.is_empty()).then_some(out)
}

/// The names of the `FUNC` types of raw BTF.
fn func_names(btf: &[u8]) -> Option<BTreeSet<String>> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(btf.get(at..at + 4)?.try_into().ok()?))
    };
    if btf.get(..2)? != [0x9f, 0xeb] {
        return None; // big-endian or not BTF
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
    let types = btf.get(hdr_len + type_off..(hdr_len + type_off).checked_add(type_len)?)?;
    let strings = btf.get(hdr_len + str_off..(hdr_len + str_off).checked_add(str_len)?)?;
    let mut names = BTreeSet::new();
    let mut at = 0;
    while at + 12 <= types.len() {
        let word = |i: usize| u32::from_le_bytes(types[at + i..at + i + 4].try_into().unwrap());
        let (name_off, info) = (word(0) as usize, word(4));
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let extra = match kind {
            1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
            3 => 12,                      // ARRAY
            4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
            2 | 7..=12 | 16 | 18 => 0,    // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            _ => return None,             // a kind this does not know: no guess
        };
        if kind == 12 {
            let name = strings.get(name_off..)?;
            let name = &name[..name.iter().position(|b| *b == 0)?];
            if let Ok(name) = std::str::from_utf8(name) {
                names.insert(name.to_string());
            }
        }
        at += 12 + extra;
    }
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw BTF with an INT, a FUNC_PROTO of one parameter and two FUNCs.
    fn btf() -> Vec<u8> {
        let strings = b"\0int\0vfs_read\0do_sys_open\0a\0";
        let mut types = Vec::new();
        let mut t = |name: u32, kind: u32, vlen: u32, size: u32, extra: &[u32]| {
            for w in [name, (kind << 24) | vlen, size].iter().chain(extra) {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        t(1, 1, 0, 4, &[32]); // int
        t(0, 13, 1, 1, &[26, 1]); // proto(int a)
        t(5, 12, 0, 2, &[]); // vfs_read
        t(14, 12, 0, 2, &[]); // do_sys_open
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn the_funcs_of_raw_btf_are_its_functions() {
        let got: Vec<String> = func_names(&btf()).unwrap().into_iter().collect();
        assert_eq!(got, ["do_sys_open", "vfs_read"]);
        // Truncated or of an unknown kind: no names rather than some.
        let b = btf();
        assert_eq!(func_names(&b[..b.len() - 30]), None);
        let mut unknown = btf();
        unknown[24 + 7] = 30; // the INT's kind byte
        assert_eq!(func_names(&unknown), None);
    }

    #[test]
    fn a_bzimage_payload_is_found_by_its_header_and_decompressed_by_its_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"KERNEL").unwrap();
        let gz = gz.finish().unwrap();
        let mut image = vec![0u8; 5 * 512];
        image[0x1f1] = 4;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(gz.len() as u32).to_le_bytes());
        image.extend_from_slice(&[0; 16]);
        image.extend_from_slice(&gz);
        assert_eq!(decompress(payload(&image).unwrap()).unwrap(), b"KERNEL");
        // A header that points past the end is no payload.
        image[0x24c..0x250].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(payload(&image), None);

        let block = lz4_flex::block::compress(b"LEGACY LZ4 KERNEL");
        let mut legacy = vec![0x02, 0x21, 0x4c, 0x18];
        legacy.extend_from_slice(&(block.len() as u32).to_le_bytes());
        legacy.extend_from_slice(&block);
        legacy.extend_from_slice(&77u32.to_le_bytes()); // the appended size
        assert_eq!(decompress(&legacy).unwrap(), b"LEGACY LZ4 KERNEL");
        assert_eq!(decompress(b"unknown"), None);
        // zstd and xz as the kernel writes them: one frame, then its size.
        let mut zst = zstd::encode_all(&b"ZSTD KERNEL"[..], 3).unwrap();
        zst.extend_from_slice(&11u32.to_le_bytes());
        assert_eq!(decompress(&zst).unwrap(), b"ZSTD KERNEL");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(b"XZ KERNEL").unwrap();
        let mut xz = xz.finish().unwrap();
        xz.extend_from_slice(&9u32.to_le_bytes());
        assert_eq!(decompress(&xz).unwrap(), b"XZ KERNEL");
    }
}
