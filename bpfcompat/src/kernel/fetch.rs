//! Downloading a pinned kernel package into the cache.

use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cache::{Meta, sha256_file};
use super::deb::extract_kernel;
use crate::errors::FetchError;
use crate::kernel::{Cache, CachedKernel, Mirrors};
use crate::matrix::Pin;

/// One HTTP client for the process, with explicit time limits so a dead
/// network fails instead of hanging a CI job.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(900)))
            .user_agent(concat!("bpfcompat/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
}

/// GET `url` as a reader; the error is a one-line description.
pub(crate) fn http_get(url: &str) -> Result<impl Read, String> {
    agent()
        .get(url)
        .call()
        .map(|r| r.into_body().into_reader())
        .map_err(|e| e.to_string())
}

/// Returns the cached kernel for `pin`, downloading and extracting it first
/// when needed. A damaged cache entry is replaced. `progress` hears about a
/// download before it starts (it is not called on a cache hit).
pub fn fetch(
    pin: &Pin,
    mirrors: &Mirrors,
    cache: &Cache,
    progress: &mut dyn FnMut(&str),
) -> Result<CachedKernel, FetchError> {
    if let Ok(Some(k)) = cache.lookup(&pin.sha256) {
        return Ok(k);
    }
    let _lock = cache.lock(&pin.sha256)?;
    let dir = cache.entry_dir(&pin.sha256);
    match cache.lookup(&pin.sha256) {
        Ok(Some(k)) => return Ok(k), // another run fetched it while we waited
        Ok(None) => {}
        Err(reason) => {
            progress(&format!(
                "cache entry {} is damaged ({reason}); fetching it again",
                dir.display()
            ));
            std::fs::remove_dir_all(&dir).map_err(|source| FetchError::Io {
                context: format!("cannot remove damaged cache entry {}", dir.display()),
                source,
            })?;
        }
    }
    let base = mirrors.get(&pin.archive)?;
    let url = format!("{base}/{}", pin.filename);
    progress(&format!(
        "downloading {} {} ({:.1} MB)",
        pin.package,
        pin.version,
        pin.size as f64 / 1e6
    ));

    let kernels = cache.root().join("kernels");
    let io = |context: String| move |source| FetchError::Io { context, source };
    let mut deb = tempfile::NamedTempFile::new_in(&kernels)
        .map_err(io(format!("cannot create a file in {}", kernels.display())))?;
    let actual = download(&url, deb.as_file_mut())?;
    if actual != pin.sha256 {
        return Err(FetchError::Checksum {
            url,
            expected: pin.sha256.clone(),
            actual,
        });
    }

    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&kernels)
        .map_err(io(format!(
            "cannot create a directory in {}",
            kernels.display()
        )))?;
    let extracted = extract_kernel(deb.path(), staging.path())
        .map_err(io(format!("cannot extract {}", pin.package)))?
        .ok_or_else(|| FetchError::NoImage {
            package: pin.package.clone(),
        })?;
    let vmlinuz_sha256 = sha256_file(&staging.path().join("vmlinuz"))
        .map_err(io("cannot read the extracted vmlinuz".into()))?;
    let meta = Meta {
        package: pin.package.clone(),
        version: pin.version.clone(),
        release: extracted.release,
        vmlinuz_sha256,
        has_config: extracted.has_config,
    };
    std::fs::write(
        staging.path().join("meta.json"),
        serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )
    .map_err(io("cannot write meta.json".into()))?;
    let staged = staging.keep();
    std::fs::rename(&staged, &dir)
        .map_err(io(format!("cannot move the entry to {}", dir.display())))?;
    cache
        .lookup(&pin.sha256)
        .map_err(|reason| FetchError::Io {
            context: format!("fresh cache entry {} is unreadable", dir.display()),
            source: std::io::Error::other(reason),
        })?
        .ok_or_else(|| unreachable_entry(&dir))
}

fn unreachable_entry(dir: &std::path::Path) -> FetchError {
    FetchError::Io {
        context: format!("cache entry {} vanished", dir.display()),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// Streams `url` into `out`, returning the sha256 of what arrived.
fn download(url: &str, out: &mut std::fs::File) -> Result<String, FetchError> {
    let fail = |message: String| FetchError::Download {
        url: url.to_string(),
        message,
    };
    let mut body = http_get(url).map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| fail(format!("writing the cache: {e}")))?;
    }
    out.flush().map_err(|e| fail(e.to_string()))?;
    Ok(hex::encode(hasher.finalize()))
}
