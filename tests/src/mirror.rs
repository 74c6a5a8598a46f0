//! A local archive mirror on 127.0.0.1 for tests: fixed paths, fixed bytes
//! and a body that stalls half-way. Nothing leaves the machine.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// What a path answers.
#[derive(Clone)]
pub enum Body {
    /// The whole body.
    Bytes(Vec<u8>),
    /// Announces `total` bytes, sends `first`, then goes silent.
    Stall { first: Vec<u8>, total: usize },
}

/// Serves `routes` until the test process ends; returns the base URL.
pub fn serve(routes: BTreeMap<String, Body>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut conn = conn;
                match routes.get(&path) {
                    Some(Body::Bytes(b)) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        );
                        let _ = conn.write_all(b);
                    }
                    Some(Body::Stall { first, total }) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = conn.write_all(first);
                        let _ = conn.flush();
                        std::thread::sleep(Duration::from_secs(600));
                    }
                    None => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    base
}

/// A gzip-compressed `Packages` index.
pub fn packages_gz(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// Every file below `dir` as a route `<prefix>/<relative path>`.
pub fn routes_of_dir(dir: &std::path::Path, prefix: &str) -> BTreeMap<String, Body> {
    let mut routes = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                routes.insert(
                    format!("{prefix}/{rel}"),
                    Body::Bytes(std::fs::read(&path).unwrap()),
                );
            }
        }
    }
    routes
}

/// An OpenPGP signing key made for one test, standing in for an archive's.
pub struct TestKey(pgp::composed::SignedSecretKey);

impl TestKey {
    /// A new Ed25519 signing key.
    pub fn new(name: &str) -> TestKey {
        TestKey::of(name, pgp::composed::KeyType::Ed25519Legacy)
    }

    /// A new RSA signing key (for tests of digests Ed25519 cannot
    /// sign with).
    pub fn rsa(name: &str) -> TestKey {
        TestKey::of(name, pgp::composed::KeyType::Rsa(2048))
    }

    fn of(name: &str, kind: pgp::composed::KeyType) -> TestKey {
        use pgp::composed::SecretKeyParamsBuilder;
        let params = SecretKeyParamsBuilder::default()
            .key_type(kind)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(format!("{name} <archive@test>"))
            .build()
            .unwrap();
        TestKey(params.generate(rand::thread_rng()).unwrap())
    }

    /// The public key, armored: a keyring file for `BPFCOMPAT_KEYRING_*`.
    pub fn public_armored(&self) -> String {
        self.0
            .to_public_key()
            .to_armored_string(Default::default())
            .unwrap()
    }

    /// `text` clear-signed, as an `InRelease` file is.
    pub fn clearsign(&self, text: &str) -> String {
        pgp::composed::CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.0.primary_key,
            &pgp::types::Password::empty(),
        )
        .unwrap()
        .to_armored_string(Default::default())
        .unwrap()
    }

    /// `text` clearsigned with a SHA-1 digest (weak: for tests of what is
    /// refused).
    pub fn clearsign_sha1(&self, text: &str) -> String {
        let hash = pgp::crypto::hash::HashAlgorithm::Sha1;
        use pgp::packet::{SignatureConfig, SignatureType};
        use pgp::types::KeyDetails;
        let key = &self.0.primary_key;
        pgp::composed::CleartextSignedMessage::new_many(text, |normalized| {
            let mut config =
                SignatureConfig::from_key(rand::thread_rng(), key, SignatureType::Text)?;
            config.hash_alg = hash;
            config.hashed_subpackets = vec![
                pgp::packet::Subpacket::regular(
                    pgp::packet::SubpacketData::SignatureCreationTime(pgp::types::Timestamp::now()),
                )?,
                pgp::packet::Subpacket::regular(pgp::packet::SubpacketData::IssuerFingerprint(
                    key.fingerprint(),
                ))?,
            ];
            Ok(vec![config.sign(
                key,
                &pgp::types::Password::empty(),
                normalized.as_bytes(),
            )?])
        })
        .unwrap()
        .to_armored_string(Default::default())
        .unwrap()
    }

    /// An armored detached signature over `data` (`repomd.xml.asc`).
    pub fn detach_sign(&self, data: &[u8]) -> String {
        pgp::composed::DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.0.primary_key,
            &pgp::types::Password::empty(),
            pgp::crypto::hash::HashAlgorithm::Sha256,
            data,
        )
        .unwrap()
        .to_armored_string(Default::default())
        .unwrap()
    }
}

/// A `Release` file listing `files` (path below `dists/<suite>/`, bytes)
/// by sha256, as an apt archive's does.
pub fn release_for(files: &[(&str, &[u8])]) -> String {
    use sha2::Digest;
    let mut text = String::from("Origin: test\nSuite: test\nSHA256:\n");
    for (path, bytes) in files {
        text.push_str(&format!(
            " {} {} {path}\n",
            hex::encode(sha2::Sha256::digest(bytes)),
            bytes.len()
        ));
    }
    text
}

/// The routes of an apt suite `dists/<suite>/` whose `InRelease`, signed by
/// `key`, lists a `Packages.gz` holding `packages`.
pub fn signed_suite(suite: &str, packages: &str, key: &TestKey) -> BTreeMap<String, Body> {
    let gz = packages_gz(packages);
    let release = release_for(&[("main/binary-amd64/Packages.gz", &gz)]);
    BTreeMap::from([
        (
            format!("/dists/{suite}/main/binary-amd64/Packages.gz"),
            Body::Bytes(gz),
        ),
        (
            format!("/dists/{suite}/InRelease"),
            Body::Bytes(key.clearsign(&release).into_bytes()),
        ),
    ])
}
