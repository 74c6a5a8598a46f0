//! Which keys sign each archive's indexes, and checking their signatures
//! (OpenPGP, the `pgp` crate).
//!
//! An archive's keys come from, in order: `BPFCOMPAT_KEYRING_<ARCHIVE>` (a
//! keyring file, binary or armored: a private mirror, a test repository);
//! the keys shipped in this crate and pinned by fingerprint (Ubuntu's
//! archive keys, the RPM distributions' keys); the host's
//! `debian-archive-keyring` package for Debian's archives.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::KeyDetails;

/// Whether resolution insists on signed indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// Every index is verified against its archive's keys (the default).
    #[default]
    Signed,
    /// Signatures are neither required nor checked (`--insecure-unsigned`,
    /// for local test repositories); digests are still checked.
    InsecureUnsigned,
}

/// Ubuntu's archive keyring (from the `ubuntu-keyring` package), of which
/// only the pinned archive signing keys are used.
const UBUNTU: &[u8] = include_bytes!("../../keys/ubuntu.gpg");

/// Keys shipped with bpfcompat, by archive, with the fingerprints that
/// may sign (any other key in the file is ignored).
/// The RPM distributions' release keys come from their packages in
/// Debian's `distribution-gpg-keys` (see keys/README.md).
const SHIPPED: &[(&str, &[u8], &[&str])] = &[
    (
        "ubuntu",
        UBUNTU,
        &[
            // Ubuntu Archive Automatic Signing Key (2012)
            "790bc7277767219c42c86f933b4fe6acc0b21f32",
            // Ubuntu Archive Automatic Signing Key (2018)
            "f6ecb3762474eda9d21b7022871920d1991bc93c",
        ],
    ),
    (
        "almalinux",
        include_bytes!("../../keys/almalinux.asc"),
        &[
            "5e9b8f5617b5066ce92057c3488fcf7c3abb34f8", // AlmaLinux 8
            "bf18ac2876178908d6e71267d36cb86cb86b3716", // AlmaLinux OS 9
            "ee6db7b98f5bf5edd9da0de5dee5c11cc2a1e572", // AlmaLinux OS 10
        ],
    ),
    (
        "rocky",
        include_bytes!("../../keys/rocky.asc"),
        &[
            "7051c470a929f454cebe37b715af5dac6d745a60", // Rocky Linux 8
            "21cb256ae16fc54c6e652949702d426d350d275d", // Rocky Linux 9
            "fc226859c0860bf0ddb95b085b106c736fedfc85", // Rocky Linux 10
        ],
    ),
    (
        "centos-stream",
        include_bytes!("../../keys/centos-stream.asc"),
        // CentOS Official Signing Key (Stream 9 and 10)
        &["99db70fae1d7ce227fb6488205b555b38483c65d"],
    ),
    (
        "amazonlinux",
        include_bytes!("../../keys/amazonlinux.asc"),
        &[
            "99e617fe5db527c0d8bd5f8e11cf1f95c87f5b1a", // Amazon Linux 2
            "b21c50fa44a99720eaa72f7fe951904ad832c631", // Amazon Linux 2023
        ],
    ),
    (
        "oracle",
        include_bytes!("../../keys/oracle.asc"),
        &[
            "76fd3db13ab67410b89db10e82562ea9ad986da3", // Oracle Linux 8
            "3e6d826d3fbab389c2f38e34bc4d06a08d8b756f", // Oracle Linux 9
        ],
    ),
    (
        "fedora",
        include_bytes!("../../keys/fedora.asc"),
        &[
            "36f612dcf27f7d1a48a835e4dbfcf71c6d9f90a6", // Fedora 44
            "4f50a6114cd5c6976a7f1179655a4b02f577861e", // Fedora 45
        ],
    ),
];

/// The host's keyring of Debian's archive keys.
const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The keys trusted to sign one archive's indexes.
pub(crate) struct Keyring {
    keys: Vec<SignedPublicKey>,
    /// Where they came from, for messages.
    source: String,
}

/// The variable that names an archive's keyring file.
pub fn keyring_var(archive: &str) -> String {
    format!(
        "BPFCOMPAT_KEYRING_{}",
        archive.to_ascii_uppercase().replace('-', "_")
    )
}

impl Keyring {
    /// The keys of `archive`; an error says where keys could come from.
    pub(crate) fn for_archive(archive: &str) -> Result<Keyring, String> {
        let var = keyring_var(archive);
        if let Some(path) = std::env::var_os(&var).filter(|v| !v.is_empty()) {
            let path = std::path::PathBuf::from(path);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read {var}={}: {e}", path.display()))?;
            return Keyring::parse(&bytes, None, format!("{var}={}", path.display()));
        }
        if let Some((_, bytes, pinned)) = SHIPPED.iter().find(|(a, ..)| *a == archive) {
            return Keyring::parse(
                bytes,
                Some(pinned),
                format!("the {archive} keys shipped with bpfcompat"),
            );
        }
        if matches!(archive, "debian" | "debian-security") {
            let bytes = std::fs::read(DEBIAN_KEYRING).map_err(|e| {
                format!(
                    "cannot read Debian's archive keys at {DEBIAN_KEYRING} ({e}): install the `debian-archive-keyring` package, or set {var}"
                )
            })?;
            return Keyring::parse(&bytes, None, DEBIAN_KEYRING.to_string());
        }
        Err(format!(
            "bpfcompat knows no keys for the `{archive}` archive: set {var} to a keyring file of the keys that sign it"
        ))
    }

    /// Reads a keyring (binary or armored, one key or many), keeping the
    /// keys whose fingerprint is `pinned` when given.
    fn parse(bytes: &[u8], pinned: Option<&[&str]>, source: String) -> Result<Keyring, String> {
        let armored = bytes.trim_ascii_start().starts_with(b"-----BEGIN");
        let parsed: Vec<_> = if armored {
            // A file of several armored blocks, one key each (as
            // distributions publish them, concatenated).
            let text = String::from_utf8_lossy(bytes);
            let mut keys = Vec::new();
            for block in text.split_inclusive("-----END PGP PUBLIC KEY BLOCK-----") {
                if !block.contains("-----BEGIN") {
                    continue;
                }
                let (found, _) = SignedPublicKey::from_armor_many(block.trim_start().as_bytes())
                    .map_err(|e| format!("{source}: not an OpenPGP keyring: {e}"))?;
                keys.extend(found);
            }
            keys
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| format!("{source}: not an OpenPGP keyring: {e}"))?
                .collect()
        };
        let mut keys: Vec<SignedPublicKey> = parsed
            .into_iter()
            .flatten()
            .filter(|k| pinned.is_none_or(|p| p.contains(&k.fingerprint().to_string().as_str())))
            .collect();
        // A primary key is trusted by being here (and pinned); a subkey only
        // through its binding signature by that primary key. (Third-party
        // certifications on the primary, as Debian's keys carry, are not
        // ours to check.)
        for k in &mut keys {
            let primary = k.primary_key.clone();
            k.public_subkeys
                .retain(|s| s.verify_bindings(&primary).is_ok());
        }
        if keys.is_empty() {
            return Err(format!("{source} holds no usable key"));
        }
        Ok(Keyring { keys, source })
    }

    /// The fingerprints, for messages.
    fn names(&self) -> String {
        let prints: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect();
        format!("{} ({})", self.source, prints.join(", "))
    }

    /// Whether one of the keys (or their subkeys) made `sig` over `data`.
    fn made(&self, sig: &Signature, data: &[u8]) -> bool {
        self.keys.iter().any(|k| {
            sig.verify(k, data).is_ok()
                || k.public_subkeys.iter().any(|s| sig.verify(s, data).is_ok())
        })
    }

    /// Of `sigs`, whether one by a trusted key with a strong digest exists;
    /// else why not (only weak ones, or none by these keys).
    fn judge<'a>(
        &self,
        sigs: impl Iterator<Item = &'a Signature>,
        data: &[u8],
    ) -> Result<(), String> {
        let mut weak = None;
        for sig in sigs {
            if self.made(sig, data) {
                match weak_digest(sig) {
                    None => return Ok(()),
                    Some(alg) => weak = Some(alg),
                }
            }
        }
        Err(match weak {
            Some(alg) => format!(
                "it is signed by {} only with the weak digest {alg}, which apt refuses (SHA-1 and weaker)",
                self.names()
            ),
            None => format!("no signature by {}", self.names()),
        })
    }

    /// The text of a cleartext-signed file (`InRelease`) when one of the
    /// keys (or their subkeys) made one of its signatures, with a strong
    /// digest.
    pub(crate) fn verify_cleartext(&self, text: &str) -> Result<String, String> {
        let (msg, _) = CleartextSignedMessage::from_string(text)
            .map_err(|e| format!("not a signed file: {e}"))?;
        let signed = msg.signed_text();
        self.judge(msg.signatures().iter(), signed.as_bytes())?;
        Ok(signed)
    }

    /// Checks a detached signature (`Release.gpg`, `repomd.xml.asc`,
    /// armored or binary) over `data`.
    pub(crate) fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<(), String> {
        let sigs: Vec<DetachedSignature> =
            if signature.trim_ascii_start().starts_with(b"-----BEGIN") {
                DetachedSignature::from_armor_many(signature)
                    .map_err(|e| format!("not a signature: {e}"))?
                    .0
                    .flatten()
                    .collect()
            } else {
                DetachedSignature::from_bytes_many(signature)
                    .map_err(|e| format!("not a signature: {e}"))?
                    .flatten()
                    .collect()
            };
        self.judge(sigs.iter().map(|d| &d.signature), data)
    }
}

/// The digest of a signature apt would refuse as weak (MD5, SHA-1,
/// RIPEMD-160, or none stated).
fn weak_digest(sig: &Signature) -> Option<HashAlgorithm> {
    match sig.hash_alg() {
        Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) => sig.hash_alg(),
        Some(HashAlgorithm::None) | None => Some(HashAlgorithm::None),
        Some(_) => None,
    }
}

/// A release file's `Valid-Until` date, when it has one and it has passed
/// (`now`): apt refuses such a file (a mirror could replay an old, signed
/// release whose kernels have known holes).
pub(crate) fn expired(release: &str, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let line = release
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix("Valid-Until:"))?
        .trim();
    // Debian writes `Sat, 13 Dec 2025 20:30:35 UTC`; RFC 2822 says +0000.
    let normal = line.replace(" UTC", " +0000").replace(" GMT", " +0000");
    match chrono::DateTime::parse_from_rfc2822(&normal) {
        Ok(until) if until < now => Some(line.to_string()),
        Ok(_) => None,
        // A date that does not parse is no date to trust.
        Err(_) => Some(format!("{line} (not a date)")),
    }
}

/// Verifies a cleartext-signed file under `trust`: its signed text, or under
/// [`Trust::InsecureUnsigned`] its text whether or not it is signed.
pub(crate) fn cleartext(archive: &str, trust: Trust, text: &str) -> Result<String, String> {
    match trust {
        Trust::Signed => Keyring::for_archive(archive)?.verify_cleartext(text),
        Trust::InsecureUnsigned => Ok(CleartextSignedMessage::from_string(text)
            .map(|(m, _)| m.signed_text())
            .unwrap_or_else(|_| text.to_string())),
    }
}

/// Verifies a detached signature under `trust`; `signature` is `None` when
/// the archive serves none.
pub(crate) fn detached(
    archive: &str,
    trust: Trust,
    data: &[u8],
    signature: Option<&[u8]>,
) -> Result<(), String> {
    match (trust, signature) {
        (Trust::InsecureUnsigned, _) => Ok(()),
        (Trust::Signed, None) => Err("the repository serves no signature".into()),
        (Trust::Signed, Some(sig)) => Keyring::for_archive(archive)?.verify_detached(data, sig),
    }
}

/// What to do about an index that is not signed by a trusted key.
pub(crate) fn hint(archive: &str) -> String {
    format!(
        "the mirror may serve altered indexes: use another mirror, or set {} to the keys that sign this archive; `--insecure-unsigned` accepts unsigned indexes, for local test repositories only",
        keyring_var(archive)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ubuntu_is_signed_by_its_two_pinned_archive_keys_only() {
        let k = Keyring::for_archive("ubuntu").unwrap();
        let mut prints: Vec<String> = k.keys.iter().map(|k| k.fingerprint().to_string()).collect();
        prints.sort();
        // The file also holds the CD image key, which never signs the archive.
        assert_eq!(
            prints,
            [
                "790bc7277767219c42c86f933b4fe6acc0b21f32",
                "f6ecb3762474eda9d21b7022871920d1991bc93c"
            ]
        );
    }

    #[test]
    fn every_shipped_keyring_holds_each_of_its_pinned_keys() {
        for (archive, _, pinned) in SHIPPED {
            let k = Keyring::for_archive(archive).unwrap();
            let mut got: Vec<String> = k.keys.iter().map(|k| k.fingerprint().to_string()).collect();
            got.sort();
            let mut want: Vec<String> = pinned.iter().map(|p| p.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{archive}");
        }
    }

    #[test]
    fn an_archive_without_keys_names_the_variable_to_set() {
        let err = Keyring::for_archive("almost-debian").err().unwrap();
        assert!(err.contains("BPFCOMPAT_KEYRING_ALMOST_DEBIAN"), "{err}");
        let err = Keyring::parse(b"junk", None, "x".into()).err().unwrap();
        assert!(err.contains("x"), "{err}");
        assert!(
            Keyring::for_archive("ubuntu")
                .unwrap()
                .verify_cleartext("plain")
                .is_err()
        );
    }
}
