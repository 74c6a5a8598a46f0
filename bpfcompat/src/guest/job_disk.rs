//! The job disk: how a job reaches a guest restored from a snapshot, whose
//! initramfs was fixed when the snapshot was taken. The host writes the
//! job's archive (the `/job` tree, cpio `newc`) to a raw image behind a
//! virtio-blk device; the restored agent polls the device until the header
//! appears, then unpacks the archive. The device reads bypass the guest's
//! page cache (`O_DIRECT`), so nothing read before the snapshot is seen.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The image's first block starts with this, then the archive's length
/// (u64, little-endian); the archive starts at [`BLOCK`].
const MAGIC: &[u8; 16] = b"BPFCOMPAT-JOB-1\n";

/// The block size of the device reads (`O_DIRECT` needs aligned reads).
const BLOCK: usize = 4096;

/// The image's size, fixed: a restored guest knows the size the device had
/// when its snapshot was taken. Sparse on the host.
pub const DISK_BYTES: u64 = 512 << 20;

/// The largest job archive the disk holds.
pub const CAPACITY: u64 = DISK_BYTES - BLOCK as u64;

/// The guest's device for the job disk (the only virtio-blk device).
pub const DEVICE: &str = "/dev/vda";

/// Writes `archive` as a job disk image at `path` (a new private file).
pub fn write(path: &Path, archive: &[u8]) -> std::io::Result<()> {
    if archive.len() as u64 > CAPACITY {
        return Err(std::io::Error::other(format!(
            "the job is {} bytes, more than the job disk's {DISK_BYTES}",
            archive.len()
        )));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let mut header = vec![0u8; BLOCK];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    header[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&(archive.len() as u64).to_le_bytes());
    f.write_all(&header)?;
    f.write_all(archive)?;
    f.set_len(DISK_BYTES)
}

/// A buffer of `len` bytes (a multiple of [`BLOCK`]) aligned to [`BLOCK`].
struct Aligned {
    raw: Vec<u8>,
    offset: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let raw = vec![0u8; len + BLOCK];
        let offset = raw.as_ptr().align_offset(BLOCK);
        Aligned { raw, offset, len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.raw[self.offset..self.offset + self.len]
    }
}

/// Waits (up to `limit`) for the job disk's header on `device`, then reads
/// the archive it holds.
pub fn receive(device: &str, limit: Duration) -> std::io::Result<Vec<u8>> {
    let started = Instant::now();
    loop {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECT)
            .open(device)
        {
            let mut head = Aligned::new(BLOCK);
            f.read_exact(head.bytes())?;
            let h = head.bytes();
            if h.starts_with(MAGIC) {
                let len = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes")) as usize;
                if len as u64 + BLOCK as u64 > DISK_BYTES {
                    return Err(std::io::Error::other(
                        "the job disk's length is out of range",
                    ));
                }
                let whole = (BLOCK + len).div_ceil(BLOCK) * BLOCK;
                let mut all = Aligned::new(whole);
                f.seek(SeekFrom::Start(0))?;
                f.read_exact(all.bytes())?;
                return Ok(all.bytes()[BLOCK..BLOCK + len].to_vec());
            }
        }
        if started.elapsed() > limit {
            return Err(std::io::Error::other(format!(
                "no job arrived on {device} within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Unpacks a job archive below `root`: directories and regular files whose
/// paths stay below `job/`.
pub fn unpack(archive: &[u8], root: &Path) -> std::io::Result<()> {
    let mut rest = archive;
    loop {
        let mut entry = cpio::NewcReader::new(rest)?;
        if entry.entry().is_trailer() {
            return Ok(());
        }
        let name = entry.entry().name().to_string();
        let mode = entry.entry().mode();
        let safe = (name == "job" || name.starts_with("job/"))
            && name
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !safe {
            return Err(std::io::Error::other(format!(
                "the job archive names `{}`, outside job/",
                name.escape_debug()
            )));
        }
        let path = root.join(&name);
        match mode & 0o170000 {
            0o040000 => std::fs::create_dir_all(&path)?,
            0o100000 => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode & 0o777)
                    .open(&path)?;
                std::io::copy(&mut entry, &mut out)?;
            }
            _ => {
                return Err(std::io::Error::other(format!(
                    "the job archive's `{name}` is neither a file nor a directory"
                )));
            }
        }
        rest = entry.finish()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cpio `newc` archive of directories and files (path, contents).
    fn archive(dirs: &[&str], files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut all: Vec<(cpio::newc::Builder, std::io::Cursor<Vec<u8>>)> = dirs
            .iter()
            .map(|d| {
                (
                    cpio::newc::Builder::new(d).mode(0o040755),
                    Default::default(),
                )
            })
            .collect();
        for (path, data) in files {
            let b = cpio::newc::Builder::new(path).mode(0o100644);
            all.push((b, std::io::Cursor::new(data.clone())));
        }
        let mut out = std::io::Cursor::new(Vec::new());
        cpio::write_cpio(all.into_iter(), &mut out).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_job_written_to_a_disk_image_is_read_back_and_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(
            &["job", "job/objects"],
            &[
                ("job/job.json", b"{}".to_vec()),
                ("job/objects/0.bpf.o", vec![7u8; 10_000]),
            ],
        );
        let disk = dir.path().join("job.img");
        write(&disk, &archive).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), DISK_BYTES);
        // tmpfs refuses O_DIRECT; a file on the test's disk is fine, else
        // read the image back plainly.
        let got = receive(disk.to_str().unwrap(), Duration::from_secs(1)).unwrap_or_else(|_| {
            let b = std::fs::read(&disk).unwrap();
            b[BLOCK..BLOCK + archive.len()].to_vec()
        });
        assert_eq!(got, archive);
        let root = dir.path().join("root");
        unpack(&got, &root).unwrap();
        assert_eq!(std::fs::read(root.join("job/job.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read(root.join("job/objects/0.bpf.o"))
                .unwrap()
                .len(),
            10_000
        );
    }

    #[test]
    fn an_archive_leaving_job_is_refused_and_an_empty_disk_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(&["etc"], &[("etc/passwd", b"x".to_vec())]);
        let err = unpack(&archive, dir.path()).unwrap_err();
        assert!(err.to_string().contains("outside job/"), "{err}");
        let empty = dir.path().join("empty.img");
        std::fs::File::create(&empty)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        assert!(receive(empty.to_str().unwrap(), Duration::from_millis(50)).is_err());
    }
}
