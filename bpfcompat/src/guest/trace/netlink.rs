//! Netlink requests that attach a BPF program (XDP through `RTM_NEWLINK`,
//! tc through `RTM_NEWTFILTER`) and the kernel's answers to them, read
//! from the buffers a loader sends and receives. Parsed strictly: a buffer
//! that is not exactly such a request is not one (a UDP payload that
//! looks like netlink would have to have every length right).

use crate::wire::trace::{AttachCall, MAX_NAME};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWTFILTER: u16 = 44;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
/// Attribute types carry flag bits above these.
const NLA_TYPE_MASK: u16 = 0x3fff;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of a buffer: (type, seq, payload).
fn messages(b: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(kind), Some(seq)) =
        (u32_at(b, at), u16_at(b, at + 4), u32_at(b, at + 8))
    {
        let len = len as usize;
        if len < 16 || at + len > b.len() {
            break;
        }
        out.push((kind, seq, &b[at + 16..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// The attributes of a payload from `start`: (type, value).
fn attributes(b: &[u8], start: usize) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    let mut at = start;
    while at < b.len() {
        let len = u16_at(b, at)? as usize;
        let kind = u16_at(b, at + 2)? & NLA_TYPE_MASK;
        if len < 4 || at + len > b.len() {
            return None;
        }
        out.push((kind, &b[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    Some(out)
}

fn find<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

fn text(v: &[u8]) -> String {
    let end = v.iter().position(|c| *c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end.min(MAX_NAME)]).into_owned()
}

/// A request that attaches a program: the attach and its sequence number.
/// `program` names the program behind a descriptor.
pub(super) fn request(
    b: &[u8],
    program: &dyn Fn(u32) -> Option<String>,
) -> Option<(AttachCall, u32)> {
    let (kind, seq, payload) = *messages(b).first()?;
    match kind {
        RTM_NEWLINK => {
            // struct ifinfomsg (16 bytes), then attributes.
            let ifindex = u32_at(payload, 4)?;
            let attrs = attributes(payload, 16)?;
            let xdp = attributes(find(&attrs, IFLA_XDP)?, 0)?;
            let fd = u32_at(find(&xdp, IFLA_XDP_FD)?, 0)?;
            // -1 detaches.
            (fd != u32::MAX).then(|| {
                (
                    AttachCall {
                        how: "netlink_xdp".into(),
                        program: program(fd),
                        attach_type: None,
                        target: Some(format!("ifindex {ifindex}")),
                    },
                    seq,
                )
            })
        }
        RTM_NEWTFILTER => {
            // struct tcmsg (20 bytes), then attributes.
            let ifindex = u32_at(payload, 4)?;
            let parent = u32_at(payload, 12)?;
            let attrs = attributes(payload, 20)?;
            if text(find(&attrs, TCA_KIND)?) != "bpf" {
                return None;
            }
            let options = attributes(find(&attrs, TCA_OPTIONS)?, 0)?;
            let fd = u32_at(find(&options, TCA_BPF_FD)?, 0)?;
            let name = find(&options, TCA_BPF_NAME).map(text);
            let direction = match parent & 0xffff {
                0xfff2 => "ingress",
                0xfff3 => "egress",
                _ => "parent",
            };
            Some((
                AttachCall {
                    how: "netlink_tc".into(),
                    program: program(fd).or(name),
                    attach_type: None,
                    target: Some(format!("ifindex {ifindex} {direction}")),
                },
                seq,
            ))
        }
        _ => None,
    }
}

/// The answers in a received buffer: (seq, errno; 0 for an acknowledgement).
pub(super) fn answers(b: &[u8]) -> Vec<(u32, i32)> {
    messages(b)
        .into_iter()
        .filter(|(kind, _, _)| *kind == NLMSG_ERROR)
        .filter_map(|(_, _, payload)| {
            let error = u32_at(payload, 0)? as i32;
            // The request's own header follows: its sequence number.
            let seq = u32_at(payload, 4 + 8)?;
            Some((seq, -error))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = ((4 + value.len()) as u16).to_le_bytes().to_vec();
        a.extend(kind.to_le_bytes());
        a.extend(value);
        while !a.len().is_multiple_of(4) {
            a.push(0);
        }
        a
    }

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = ((16 + payload.len()) as u32).to_le_bytes().to_vec();
        m.extend(kind.to_le_bytes());
        m.extend(5u16.to_le_bytes());
        m.extend(seq.to_le_bytes());
        m.extend(0u32.to_le_bytes());
        m.extend(payload);
        m
    }

    #[test]
    fn an_xdp_attach_and_its_refusal_are_read() {
        let mut ifinfo = vec![0u8; 16];
        ifinfo[4..8].copy_from_slice(&3u32.to_le_bytes());
        let xdp = attr(IFLA_XDP | 0x8000, &attr(IFLA_XDP_FD, &7u32.to_le_bytes()));
        let req = message(RTM_NEWLINK, 42, &[ifinfo, xdp].concat());
        let names = |fd: u32| (fd == 7).then(|| "xdp_pass".to_string());
        let (a, seq) = request(&req, &names).unwrap();
        assert_eq!(
            (a.how.as_str(), a.program.as_deref(), seq),
            ("netlink_xdp", Some("xdp_pass"), 42)
        );
        assert_eq!(a.target.as_deref(), Some("ifindex 3"));
        // The kernel's answer: EOPNOTSUPP for request 42.
        let mut err = (-95i32).to_le_bytes().to_vec();
        err.extend(&req[..16]);
        assert_eq!(answers(&message(NLMSG_ERROR, 42, &err)), vec![(42, 95)]);
    }

    #[test]
    fn a_tc_filter_names_its_program_and_direction() {
        let mut tcmsg = vec![0u8; 20];
        tcmsg[12..16].copy_from_slice(&0xffff_fff2u32.to_le_bytes());
        let options = [
            attr(TCA_BPF_FD, &9u32.to_le_bytes()),
            attr(TCA_BPF_NAME, b"tc_in\0"),
        ]
        .concat();
        let payload = [tcmsg, attr(TCA_KIND, b"bpf\0"), attr(TCA_OPTIONS, &options)].concat();
        let (a, _) = request(&message(RTM_NEWTFILTER, 1, &payload), &|_| None).unwrap();
        assert_eq!(a.program.as_deref(), Some("tc_in"));
        assert_eq!(a.target.as_deref(), Some("ifindex 0 ingress"));
    }

    #[test]
    fn anything_else_is_no_request() {
        assert!(request(b"GET / HTTP/1.1\r\n\r\n", &|_| None).is_none());
        assert!(request(&message(RTM_NEWLINK, 1, &[0u8; 16]), &|_| None).is_none());
        assert!(answers(&[0xff; 40]).is_empty());
    }
}
