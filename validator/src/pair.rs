//! Device pairs created over rtnetlink for programs to attach to, deleted
//! with the validation (both sides): a netkit pair for netkit programs, as
//! their loader attaches them to its own (the kernel's device type, Linux
//! 6.7); a veth pair for XDP and tc programs checked on a host, where `lo`
//! carries the host's own traffic ([`NetDevice`], which is `lo` in a guest).
//! In fire mode a packet sent out of each side makes the programs of both
//! sides run.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoNetkit, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::Site;
use crate::clsact::LO_IFINDEX;

/// A device pair; dropping it deletes both devices.
pub struct DevicePair {
    /// The primary device, where programs attach.
    pub ifindex: u32,
    peer: u32,
    /// The primary device's name.
    pub name: String,
    peer_name: String,
    /// The sections of the programs it is made for.
    pub sections: &'static [&'static str],
}

impl DevicePair {
    /// A netkit pair; `None` where the kernel has no netkit device type (it
    /// answers EOPNOTSUPP: "Unknown device type").
    pub fn netkit() -> io::Result<Option<DevicePair>> {
        let names = names("nk");
        let info = |peer| LinkInfo::Data(InfoData::Netkit(vec![InfoNetkit::Peer(peer)]));
        match DevicePair::create(InfoKind::Netkit, names, &["netkit/"], info) {
            Ok(pair) => Ok(Some(pair)),
            Err(e) if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A veth pair.
    pub fn veth() -> io::Result<DevicePair> {
        let info = |peer| LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer)));
        let names = names("ve");
        DevicePair::create(InfoKind::Veth, names, &["xdp", "tc", "classifier"], info)
    }

    fn create(
        kind: InfoKind,
        [name, peer_name]: [String; 2],
        sections: &'static [&'static str],
        info: impl FnOnce(LinkMessage) -> LinkInfo,
    ) -> io::Result<DevicePair> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.clone()));
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::IfName(name.clone()));
        link.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(kind),
            info(peer),
        ]));
        match request(
            RouteNetlinkMessage::NewLink(link),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(()) => {}
            // A pair left by a check that was killed: ours by name, reused.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let index = |n: &str| nix::net::if_::if_nametoindex(n).map_err(io::Error::from);
        let (ifindex, peer) = match (index(&name), index(&peer_name)) {
            (Ok(i), Ok(p)) => (i, p),
            (Err(e), _) | (_, Err(e)) => {
                // Made but not found again: not left behind.
                let mut link = LinkMessage::default();
                link.attributes.push(LinkAttribute::IfName(name.clone()));
                let _ = request(RouteNetlinkMessage::DelLink(link), 0);
                return Err(e);
            }
        };
        Ok(DevicePair {
            ifindex,
            peer,
            name,
            peer_name,
            sections,
        })
    }

    /// Brings both sides up and sends packets out of each, so that the
    /// programs of both sides run (netkit runs them in its transmit path; a
    /// veth side's packets arrive at the other side).
    pub fn send_through_both(&self) -> io::Result<()> {
        for index in [self.ifindex, self.peer] {
            let mut link = LinkMessage::default();
            link.header.index = index;
            link.header.flags = LinkFlags::Up;
            link.header.change_mask = LinkFlags::Up;
            request(RouteNetlinkMessage::SetLink(link), 0)?;
        }
        // Until the kernel's link watcher has activated a device, its qdisc
        // drops what is sent: wait for both to be operationally up.
        let up = |name: &str| {
            std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
                .is_ok_and(|s| s.trim() == "up")
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while !(up(&self.name) && up(&self.peer_name)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for index in [self.ifindex, self.peer] {
            for _ in 0..3 {
                send_packet(index)?;
            }
        }
        Ok(())
    }
}

/// The device XDP and tc programs attach to.
pub(crate) enum NetDevice {
    /// `lo`, in a guest, where the workload's traffic passes.
    Lo,
    /// A veth pair made for them, where no traffic of the host passes.
    Veth(DevicePair),
}

impl NetDevice {
    pub(crate) fn new(site: Site) -> std::io::Result<NetDevice> {
        match site {
            Site::Guest => Ok(NetDevice::Lo),
            Site::Host => DevicePair::veth().map(NetDevice::Veth),
        }
    }

    pub(crate) fn ifindex(&self) -> i32 {
        match self {
            NetDevice::Lo => LO_IFINDEX,
            NetDevice::Veth(pair) => pair.ifindex as i32,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            NetDevice::Lo => "lo",
            NetDevice::Veth(pair) => &pair.name,
        }
    }
}

/// The names of a pair of `kind`: `bpf<kind><pid>a` and `…b`, so that two
/// checks at once never share (and delete) each other's devices; at most
/// 13 bytes, within the kernel's 15.
fn names(kind: &str) -> [String; 2] {
    let pid = std::process::id();
    [format!("bpf{kind}{pid}a"), format!("bpf{kind}{pid}b")]
}

/// Removes the device pairs checks that are gone left behind (a check
/// killed before it could): ours by name, `bpf<kind><pid>a`, whose PID no
/// longer runs. Returns their names.
pub(crate) fn sweep_dead() -> Vec<String> {
    let Ok(devices) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for d in devices.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let Some(pid) = ["bpfve", "bpfnk"]
            .iter()
            .find_map(|k| name.strip_prefix(k))
            .and_then(|rest| rest.strip_suffix('a'))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if bpfcompat_engine::process_group::alive(pid) {
            continue;
        }
        let Ok(index) = nix::net::if_::if_nametoindex(name.as_str()) else {
            continue;
        };
        let mut link = LinkMessage::default();
        link.header.index = index;
        if request(RouteNetlinkMessage::DelLink(link), 0).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// Sends a minimal IPv4/UDP packet (10.0.0.1 → 10.0.0.2) out of the device
/// `index` through a packet socket: the device's transmit path runs.
fn send_packet(index: u32) -> io::Result<()> {
    use nix::libc;
    const ETH_P_IP: u16 = 0x0800;
    let mut packet = [0u8; 28];
    packet[..12].copy_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            i32::from(ETH_P_IP.to_be()),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is valid; the fields set are its own.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_IP.to_be();
    to.sll_ifindex = index as i32;
    // SAFETY: the buffer and address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const to).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for DevicePair {
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
