//! A netkit device for netkit programs to attach to, as their loader
//! attaches them to its own: the kernel's device type (Linux 6.7), created
//! over rtnetlink for the validation and deleted with it (its peer too).

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The primary device's name; the kernel names its peer.
const NAME: &str = "bpfcompat-nk0";

/// A netkit pair; dropping it deletes both devices.
pub struct Netkit {
    /// The primary device, where programs of both sides attach.
    pub ifindex: u32,
}

impl Netkit {
    /// Creates the pair; `None` where the kernel has no netkit device type
    /// (it answers EOPNOTSUPP: "Unknown device type").
    pub fn create() -> io::Result<Option<Netkit>> {
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::IfName(NAME.into()));
        link.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Netkit,
            )]));
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        match request(RouteNetlinkMessage::NewLink(link), flags) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => return Ok(None),
            // A pair left by a check that was killed: ours by name, reused.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let ifindex = nix::net::if_::if_nametoindex(NAME)?;
        Ok(Some(Netkit { ifindex }))
    }
}

impl Drop for Netkit {
    fn drop(&mut self) {
        let mut link = LinkMessage::default();
        link.header.index = self.ifindex;
        let _ = request(RouteNetlinkMessage::DelLink(link), 0);
    }
}

/// Sends one rtnetlink request and reads the kernel's acknowledgement.
fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(message));
    req.finalize();
    let mut buf = vec![0; req.header.length as usize];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut reply = vec![0; 8192];
    let n = socket.recv(&mut &mut reply[..], 0)?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match reply.payload {
        NetlinkPayload::Error(e) if e.code.is_some() => Err(e.to_io()),
        NetlinkPayload::Error(_) => Ok(()),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("rtnetlink answered {other:?} instead of an acknowledgement"),
        )),
    }
}
