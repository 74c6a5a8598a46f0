//! Who may speak for a guest: its records signed with a key of that boot.
//!
//! Until the guest's init says hello, only it runs in the guest, and its
//! records go unsigned. The hello carries a fresh key (read from the
//! guest's `/dev/urandom` after the guest booted or was restored, so every
//! restore of a saved machine has its own), and from then on every record
//! carries a tag: BLAKE3 keyed with it over the record's number and text.
//! The key stays in the init's memory; the user's code runs in a PID
//! namespace of its own ([`crate::guest::isolate`]), where the init is not
//! there to be read. A loader that writes record lines on a serial port
//! cannot tag them: the host keeps them as foreign lines, never as records.
//!
//! A line is `BPFCOMPAT2 <tag> <json>`: the tag is `-` before the hello,
//! `K<key>` on the hello, else 32 hex digits.

use super::{MalformedRecord, RECORD_PREFIX, Record};

/// A key's length in bytes.
const KEY_BYTES: usize = 32;
/// A tag's length in bytes (shown as twice as many hex digits).
const TAG_BYTES: usize = 16;
/// Foreign lines kept per boot, each cut to [`FOREIGN_LINE`] characters.
const FOREIGN_KEPT: usize = 20;
const FOREIGN_LINE: usize = 300;

/// The guest's side: signs what it sends.
#[derive(Default)]
pub struct Signer {
    key: Option<[u8; KEY_BYTES]>,
    sent: u64,
}

impl Signer {
    /// The line for `record`. A hello draws the boot's key (once).
    pub fn line(&mut self, record: &Record) -> String {
        let json = serde_json::to_string(record).expect("records always serialize");
        match (&self.key, record) {
            (None, Record::Hello { .. }) => {
                let key = fresh_key();
                self.key = Some(key);
                format!("{RECORD_PREFIX}K{} {json}", hex::encode(key))
            }
            (None, _) => format!("{RECORD_PREFIX}- {json}"),
            (Some(key), _) => {
                self.sent += 1;
                format!("{RECORD_PREFIX}{} {json}", tag(key, self.sent, &json))
            }
        }
    }
}

/// 32 bytes of the kernel's randomness, mixed with the clock in case it
/// cannot be read. Drawn with `GRND_INSECURE` (Linux 5.6): a guest restored
/// from a machine saved early in its boot has an unseeded generator, and
/// from 5.18 a read of `/dev/urandom` then spends up to a second making
/// jitter entropy. The key need only be unknown to a loader that starts
/// after it is drawn (the generator's past output cannot be read back).
/// Older kernels read `/dev/urandom`, which never waits there.
fn fresh_key() -> [u8; KEY_BYTES] {
    use std::io::Read;
    let mut key = [0u8; KEY_BYTES];
    // SAFETY: getrandom into a buffer of the length given.
    let got = unsafe {
        nix::libc::getrandom(key.as_mut_ptr().cast(), KEY_BYTES, nix::libc::GRND_INSECURE)
    };
    let read = match got == KEY_BYTES as isize {
        true => Ok(()),
        false => std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)),
    };
    let mut h = blake3::Hasher::new();
    h.update(&key);
    if read.is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        h.update(&now.as_nanos().to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
    }
    *h.finalize().as_bytes()
}

fn tag(key: &[u8; KEY_BYTES], n: u64, json: &str) -> String {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&n.to_le_bytes());
    h.update(json.as_bytes());
    hex::encode(&h.finalize().as_bytes()[..TAG_BYTES])
}

/// The host's side of one boot's result port: which lines are the guest's.
#[derive(Default, Debug)]
pub struct Verifier {
    key: Option<[u8; KEY_BYTES]>,
    received: u64,
    /// Lines that claimed to be records but were not the guest's init's
    /// (unsigned or mis-signed after the hello, a second hello), clipped.
    pub foreign: Vec<String>,
    /// How many such lines there were in all.
    pub foreign_count: usize,
}

/// What one line of the result port is.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A record of the guest's init.
    Record(Record),
    /// A line with the record prefix that is not a record at all.
    Malformed(MalformedRecord),
    /// Not a record line (noise, or a line some other process wrote).
    Other,
}

impl Verifier {
    /// Judges one line (without its newline).
    pub fn accept(&mut self, line: &str) -> Line {
        let line = line.trim_end_matches(['\r', '\n']);
        let Some(start) = line.find(RECORD_PREFIX) else {
            return Line::Other;
        };
        let rest = &line[start + RECORD_PREFIX.len()..];
        let Some((tag, json)) = rest.split_once(' ') else {
            return self.malformed(line, "no tag".into());
        };
        let record = match serde_json::from_str::<Record>(json) {
            Ok(r) => r,
            Err(e) => return self.malformed(line, e.to_string()),
        };
        let genuine = match (&self.key, tag) {
            (None, "-") => !matches!(record, Record::Hello { .. }),
            (None, t) if matches!(record, Record::Hello { .. }) => match parse_key(t) {
                Some(key) => {
                    self.key = Some(key);
                    true
                }
                None => false,
            },
            (None, _) => false,
            (Some(key), t) => {
                let n = self.received + 1;
                let ok = tag_matches(key, n, json, t);
                if ok {
                    self.received = n;
                }
                ok
            }
        };
        if genuine {
            return Line::Record(record);
        }
        self.foreign_count += 1;
        if self.foreign.len() < FOREIGN_KEPT {
            self.foreign.push(line.chars().take(FOREIGN_LINE).collect());
        }
        Line::Other
    }

    fn malformed(&mut self, line: &str, error: String) -> Line {
        Line::Malformed(MalformedRecord {
            line: line.chars().take(FOREIGN_LINE).collect(),
            error,
        })
    }
}

fn parse_key(tag: &str) -> Option<[u8; KEY_BYTES]> {
    let bytes = hex::decode(tag.strip_prefix('K')?).ok()?;
    bytes.try_into().ok()
}

fn tag_matches(key: &[u8; KEY_BYTES], n: u64, json: &str, got: &str) -> bool {
    // Not secret-dependent in a way a guest could time: it sees no answer.
    tag(key, n, json) == got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(release: &str) -> Record {
        Record::Hello {
            kernel_release: release.into(),
            kernel_btf: true,
            lsm: None,
            uptime_ms: 1,
            modules_not_loaded: Vec::new(),
        }
    }

    fn done() -> Record {
        Record::Done { uptime_ms: 2 }
    }

    #[test]
    fn the_inits_records_pass_and_anything_else_on_the_port_is_foreign() {
        let mut guest = Signer::default();
        let mut host = Verifier::default();
        let awaiting = Record::AwaitingJob { uptime_ms: 1 };
        assert_eq!(host.accept(&guest.line(&awaiting)), Line::Record(awaiting));
        assert_eq!(
            host.accept(&guest.line(&hello("6.1.0-9"))),
            Line::Record(hello("6.1.0-9"))
        );
        // A loader's forgeries: unsigned, a second hello with its own key, a
        // replayed line of the guest's.
        let mut forger = Signer::default();
        let forged_hello = forger.line(&hello("5.10.0-1"));
        let forged = forger.line(&done());
        assert_eq!(
            host.accept(&format!(
                "BPFCOMPAT2 - {}",
                serde_json::to_string(&done()).unwrap()
            )),
            Line::Other
        );
        assert_eq!(host.accept(&forged_hello), Line::Other);
        assert_eq!(host.accept(&forged), Line::Other);
        let real = guest.line(&done());
        assert_eq!(host.accept(&real), Line::Record(done()));
        assert_eq!(host.accept(&real), Line::Other, "a replay is foreign");
        assert_eq!(host.foreign_count, 4);
        assert!(host.foreign[1].contains("5.10.0-1"));
        assert_eq!(host.accept("kernel noise"), Line::Other);
        assert_eq!(host.foreign_count, 4);
    }

    #[test]
    fn each_hello_draws_its_own_key() {
        let a = Signer::default().line(&hello("x"));
        let b = Signer::default().line(&hello("x"));
        assert_ne!(a, b);
        let mut host = Verifier::default();
        assert!(matches!(
            host.accept("BPFCOMPAT2 Kzz {}"),
            Line::Malformed(_)
        ));
    }
}
