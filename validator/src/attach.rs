//! Attaching loaded programs to a hook their section names, then detaching.
//!
//! libbpf's auto-attach knows tracepoints, raw and BTF tracepoints, kprobes,
//! ksyscalls, kprobe.multi, fentry/fexit/fmod_ret, LSM and uprobes with a path.
//! Hooks that need a target are given one: XDP, tc and tcx (through a tcx
//! link) on `lo` in a guest and on a veth pair of their own elsewhere
//! ([`NetDevice`]), netkit programs on a netkit device created for them
//! ([`crate::pair`]), cgroup programs on the root cgroup in a guest and on
//! one of their own elsewhere ([`crate::cgroup`]), and
//! uprobe.multi links on a function of this very binary
//! ([`bpfcompat_uprobe_target`]): whether the kernel has the link type is the
//! question, and the loader's own binary is not in the guest. struct_ops
//! programs are attached as their loader would: by registering their
//! struct_ops map (`bpf_map__attach_struct_ops`, through a link for
//! `.struct_ops.link`).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};

use bpfcompat_engine::wire::{AttachTargets, Fixups, Hook};
use bpfcompat_engine::wire::{Outcome, StepFailure};
use libbpf_rs::{MapCore, MapType, Object, ProgramMut, TC_INGRESS, TcHookBuilder};

use crate::Site;
use crate::capture;
use crate::cgroup::CgroupTarget;
use crate::clsact::{Clsact, LO_IFINDEX};
use crate::evidence::failure;
use crate::pair::{DevicePair, NetDevice};

/// The function uprobe.multi programs are attached to, in this binary
/// (`/proc/self/exe`): the agent's in a guest, the CLI's under `check`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bpfcompat_uprobe_target() {
    std::hint::black_box(());
}

/// Attaches every loaded program; all links are held until the end so that
/// programs attach side by side as a loader would have them, then dropped.
pub fn attach_all(
    obj: &mut Object,
    fixups: &Fixups,
    site: Site,
    owners: &crate::struct_ops::Owners,
) -> (BTreeMap<String, Outcome>, Attached) {
    let mut out = BTreeMap::new();
    let mut targets = Targets::for_object(obj, site);
    let registered = register_struct_ops(obj, &mut targets.keep);
    for prog in obj.progs_mut().filter(|p| p.autoload()) {
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        let fixup = fixups.programs.get(&name);
        let placeholder =
            fixup.is_some_and(|f| f.placeholder == Some(true) && f.attach_target.is_none());
        let outcome = if Hook::new(&section).is_struct_ops() {
            registration_of(&name, owners, &registered)
        } else if placeholder {
            Outcome::Skipped {
                reason: bpfcompat_engine::wire::placeholder_attach(&section),
            }
        } else {
            capture::take();
            let target = fixups
                .programs
                .get(&name)
                .and_then(|f| f.attach_target.as_ref());
            targets.attach(&prog, &name, &section, target)
        };
        out.insert(name, outcome);
    }
    (out, targets.finish())
}

/// What one object's programs attach to, made for it before the first
/// attach and kept, with the links, until they are all detached.
struct Targets {
    site: Site,
    netkit: Option<std::io::Result<Option<DevicePair>>>,
    cgroup: Option<std::io::Result<CgroupTarget>>,
    device: Option<std::io::Result<NetDevice>>,
    keep: Vec<Guard>,
    notes: Vec<String>,
    substituted: Vec<String>,
}

impl Targets {
    /// The targets the object's programs need, made now.
    fn for_object(obj: &Object, site: Site) -> Targets {
        let has = |wanted: &dyn Fn(&str) -> bool| {
            obj.progs()
                .any(|p| p.autoload() && wanted(&p.section().to_string_lossy()))
        };
        Targets {
            site,
            netkit: has(&|s| Hook::new(s).is_netkit()).then(DevicePair::netkit),
            cgroup: has(&|s| Hook::new(s).attaches_to_cgroup())
                .then(|| CgroupTarget::new(site))
                .flatten(),
            device: has(&|s| Hook::new(s).needs_net_device()).then(|| NetDevice::new(site)),
            keep: Vec::new(),
            notes: Vec::new(),
            substituted: Vec::new(),
        }
    }

    /// Attaches one program where its section says, keeping the link.
    fn attach(
        &mut self,
        prog: &ProgramMut,
        name: &str,
        section: &str,
        targets: Option<&AttachTargets>,
    ) -> Outcome {
        let keep = &mut self.keep;
        let hook = Hook::new(section);
        if hook.is_netkit() {
            return attach_netkit(prog, name, self.netkit.as_ref(), keep);
        }
        if hook.attaches_to_cgroup() {
            return attach_cgroup(prog, name, self.cgroup.as_ref(), keep);
        }
        if self.site == Site::Guest && hook.is_usdt() {
            return match usdt_here(prog) {
                Ok(link) => {
                    keep.push(Guard::Link(link));
                    self.notes.push(format!(
                        "USDT `{name}`: attached to the validator's own probe (bpfcompat:probe); `{section}` names the loader's application, not the guest's (the kernel's uprobes and libbpf's USDT specs are what is judged)"
                    ));
                    self.substituted.push(section.to_string());
                    Outcome::Ok
                }
                Err(e) => Outcome::Failed(failure(&e, &capture::take(), Some(name))),
            };
        }
        if let Some(reason) = hook.placed_by_the_loader() {
            return Outcome::Skipped {
                reason: reason.into(),
            };
        }
        if hook.needs_net_device() {
            return attach_net(
                prog,
                name,
                section,
                self.device.as_ref(),
                keep,
                &mut self.notes,
            );
        }
        if let (Site::Guest, Some((binary, retprobe))) = (self.site, hook.uprobe_on_a_binary()) {
            return match uprobe_here(prog, retprobe) {
                Ok(link) => {
                    keep.push(Guard::Link(link));
                    self.notes.push(format!(
                        "uprobe `{name}`: attached to a function of the validator; `{binary}` is the loader's, not the guest's (the kernel's uprobes are what is judged)"
                    ));
                    self.substituted.push(section.to_string());
                    Outcome::Ok
                }
                Err(e) => Outcome::Failed(failure(&e, &capture::take(), Some(name))),
            };
        }
        // Configured targets in the loader's order: the first that attaches.
        let tried: Vec<Option<&str>> = match targets {
            Some(t) => t.all().iter().map(|t| Some(t.as_str())).collect(),
            None => vec![None],
        };
        let mut attached = Ok(None);
        for (i, target) in tried.iter().enumerate() {
            attached = attach_one(prog, section, *target);
            if let (Ok(_), Some(t)) = (&attached, targets)
                && i > 0
            {
                self.notes
                    .push(crate::fixups::next_choice(name, t.all(), i));
            }
            if attached.is_ok() {
                break;
            }
        }
        match attached {
            Ok(Some(guard)) => {
                self.keep.push(guard);
                Outcome::Ok
            }
            Ok(None) => Outcome::Skipped {
                reason: unattached_reason(section),
            },
            Err(e) => {
                let mut f = failure(&e, &capture::take(), Some(name));
                f.tracefs = Some(tracefs_mounted());
                Outcome::Failed(f)
            }
        }
    }

    /// The attachments; the devices and the cgroup made for them go after
    /// the links, which are dropped first.
    fn finish(mut self) -> Attached {
        self.notes.extend(placement_notes(
            self.device.as_ref().and_then(|d| d.as_ref().ok()),
            self.cgroup.as_ref().and_then(|c| c.as_ref().ok()),
        ));
        if let Some(Ok(Some(pair))) = self.netkit {
            self.keep.push(Guard::Pair(pair));
        }
        if let Some(Ok(NetDevice::Veth(pair))) = self.device {
            self.keep.push(Guard::Pair(pair));
        }
        if let Some(Ok(target)) = self.cgroup {
            self.keep.push(Guard::Cgroup(target));
        }
        Attached {
            guards: self.keep,
            notes: self.notes,
            substituted: self.substituted,
            site: self.site,
        }
    }
}

/// Why a program the validator gave no hook to was not attached.
fn unattached_reason(section: &str) -> String {
    let hook = Hook::new(section);
    if hook.usdt_names_binary() {
        format!(
            "a USDT probe in the loader's binary (section `{section}`): the loader attaches it, with the processes it traces"
        )
    } else if hook.loader_names_target() {
        format!(
            "set by the loader: section `{section}` names no target (configure attach_target to attach it here)"
        )
    } else {
        format!("no attach point for section `{section}` without configuration")
    }
}

/// What a report says of where a host's check put programs: a veth pair
/// and a cgroup made for it, which the host's traffic and processes did not
/// pass. Nothing for a guest's `lo` and root cgroup.
pub(crate) fn placement_notes(
    device: Option<&NetDevice>,
    cgroup: Option<&CgroupTarget>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(NetDevice::Veth(pair)) = device {
        notes.push(format!(
            "XDP and tc programs were attached to `{}`, a veth pair made for this check and deleted after it: this host's traffic did not pass them",
            pair.name
        ));
    }
    if let Some(CgroupTarget::Own(own)) = cgroup {
        notes.push(format!(
            "cgroup programs were attached to `{}`, a cgroup made for this check and removed after it: this host's processes did not pass them",
            own.path().display()
        ));
    }
    notes
}

/// Attaches an XDP or tc program to `device`: XDP through a link (through
/// netlink where the kernel refuses the link, as loaders do), tc as a
/// filter (or through a tcx link for `tcx/` and its aliases).
fn attach_net(
    prog: &ProgramMut,
    name: &str,
    section: &str,
    device: Option<&std::io::Result<NetDevice>>,
    keep: &mut Vec<Guard>,
    notes: &mut Vec<String>,
) -> Outcome {
    let ifindex = match device {
        Some(Ok(device)) => device.ifindex(),
        Some(Err(e)) => {
            return Outcome::Failed(StepFailure::unprepared(format!(
                "no device of its own to attach to: {e}"
            )));
        }
        None => unreachable!("a device is made for every object with XDP or tc programs"),
    };
    // libbpf reads `tc/ingress` and `tc/egress` as aliases of `tcx/`.
    let hook = Hook::new(section);
    let attached = if hook.is_tcx() {
        tcx_link(prog, ifindex).map(Guard::Raw)
    } else if hook.is_xdp() {
        xdp(prog, name, ifindex, notes)
    } else {
        tc_filter(prog, ifindex)
    };
    match attached {
        Ok(guard) => {
            keep.push(guard);
            Outcome::Ok
        }
        Err(e) => Outcome::Failed(failure(&e, &capture::take(), Some(name))),
    }
}

/// Attaches a netkit program to `device`, the pair created for the object's
/// netkit programs; where the kernel has no netkit device type, to `lo`:
/// whether the kernel has netkit links is then the question.
fn attach_netkit(
    prog: &ProgramMut,
    name: &str,
    device: Option<&std::io::Result<Option<DevicePair>>>,
    keep: &mut Vec<Guard>,
) -> Outcome {
    let ifindex = match device {
        Some(Err(e)) => {
            return Outcome::Failed(StepFailure::unprepared(format!(
                "no netkit device to attach to: {e}"
            )));
        }
        Some(Ok(Some(d))) => d.ifindex as i32,
        _ => LO_IFINDEX,
    };
    match netkit_link(prog, ifindex) {
        Ok(link) => {
            keep.push(Guard::Raw(link));
            Outcome::Ok
        }
        Err(e) => Outcome::Failed(failure(&e, &capture::take(), Some(name))),
    }
}

/// Attaches a cgroup program (an `lsm_cgroup` one too, which libbpf cannot
/// auto-attach) to `target` ([`CgroupTarget`]: the root in a guest, a
/// cgroup of its own elsewhere).
fn attach_cgroup(
    prog: &ProgramMut,
    name: &str,
    target: Option<&std::io::Result<CgroupTarget>>,
    keep: &mut Vec<Guard>,
) -> Outcome {
    let dir = match target {
        None => {
            return Outcome::Skipped {
                reason: "no cgroup v2 hierarchy is mounted here to attach to".into(),
            };
        }
        Some(Err(e)) => {
            return Outcome::Failed(StepFailure::unprepared(format!(
                "no cgroup of its own to attach to: {e}"
            )));
        }
        Some(Ok(target)) => target.dir(),
    };
    match prog.attach_cgroup(dir.as_raw_fd()) {
        Ok(link) => {
            keep.push(Guard::Link(link));
            Outcome::Ok
        }
        Err(e) => Outcome::Failed(failure(&e, &capture::take(), Some(name))),
    }
}

/// Registers every struct_ops map of the object. The outcome is that of its
/// programs: the first map the kernel refused, else ok.
fn register_struct_ops(obj: &mut Object, keep: &mut Vec<Guard>) -> BTreeMap<String, Outcome> {
    // A map the loader does not create (autocreate off) is not there to
    // register.
    let created: Vec<String> = obj
        .maps()
        .filter(|m| m.map_type() == MapType::StructOps)
        // SAFETY: a map of a live, loaded object.
        .filter(|m| unsafe {
            libbpf_rs::libbpf_sys::bpf_map__fd(libbpf_rs::AsRawLibbpf::as_libbpf_object(m).as_ptr())
        } >= 0)
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect();
    let mut outcomes = BTreeMap::new();
    for mut map in obj.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        if !created.contains(&name) {
            continue;
        }
        capture::take();
        let outcome = match map.attach_struct_ops() {
            Ok(link) => {
                keep.push(Guard::Link(link));
                Outcome::Ok
            }
            Err(e) => {
                let mut f = failure(&e, &capture::take(), None);
                f.error = format!("registering struct_ops map `{name}`: {}", f.error);
                Outcome::Failed(f)
            }
        };
        outcomes.insert(name, outcome);
    }
    outcomes
}

/// A struct_ops program's attach: the registration of the maps that point
/// to it (the first refused one, by name); where the object's ELF named no
/// owner, the first refusal of any.
fn registration_of(
    program: &str,
    owners: &crate::struct_ops::Owners,
    registered: &BTreeMap<String, Outcome>,
) -> Outcome {
    let refused = |o: &&Outcome| matches!(o, Outcome::Failed(_));
    match owners.get(program) {
        Some(maps) => {
            let mine: Vec<&Outcome> = maps.iter().filter_map(|m| registered.get(m)).collect();
            if let Some(failed) = mine.iter().copied().find(refused) {
                return failed.clone();
            }
            if mine.is_empty() {
                return Outcome::Skipped {
                    reason: format!(
                        "its struct_ops map{} not created (autocreate off)",
                        if maps.len() == 1 {
                            format!(" `{}` is", maps[0])
                        } else {
                            "s are".into()
                        }
                    ),
                };
            }
            Outcome::Ok
        }
        None => registered
            .values()
            .find(refused)
            .cloned()
            .unwrap_or(Outcome::Ok),
    }
}

/// The attachments of [`attach_all`]; dropping it detaches everything.
pub struct Attached {
    guards: Vec<Guard>,
    /// What the report should say about where programs were attached.
    pub notes: Vec<String>,
    /// Sections of uprobes attached to [`bpfcompat_uprobe_target`] in
    /// place of the loader's binary.
    substituted: Vec<String>,
    /// Where the programs were attached.
    pub site: Site,
}

impl Attached {
    /// Nothing attached.
    pub fn none() -> Attached {
        Attached {
            guards: Vec::new(),
            notes: Vec::new(),
            substituted: Vec::new(),
            site: Site::Host,
        }
    }

    /// Moves this process into the cgroup of the programs' own, where they
    /// have one, until the guard is dropped: the trigger's processes then
    /// pass them. `Some(Err)` where the move failed.
    pub fn enter_cgroup(&self) -> Option<std::io::Result<crate::cgroup::Inside>> {
        self.guards.iter().find_map(|g| match g {
            Guard::Cgroup(CgroupTarget::Own(own)) => Some(own.enter()),
            _ => None,
        })
    }

    /// Exercises the targets the validator itself gave programs, which no
    /// trigger reaches: calls the uprobe.multi target function, sends
    /// packets out of each side of the device pairs.
    pub fn stimulate(&self) -> Reach {
        for _ in 0..3 {
            bpfcompat_uprobe_target();
            bpfcompat_usdt_site();
        }
        let mut reach = Reach {
            reached: ["uprobe.multi", "uretprobe.multi", "uprobe.session", "usdt"]
                .iter()
                .map(|s| s.to_string())
                .chain(self.substituted.iter().cloned())
                .collect(),
            missed: Vec::new(),
        };
        for g in &self.guards {
            if let Guard::Pair(pair) = g {
                let into = match pair.send_through_both() {
                    Ok(()) => &mut reach.reached,
                    Err(_) => &mut reach.missed,
                };
                into.extend(pair.sections.iter().map(|s| s.to_string()));
            }
        }
        reach
    }
}

/// What [`Attached::stimulate`] did, by section prefix: the programs it
/// ran, and those it was to run but could not (no verdict on them).
pub struct Reach {
    /// Sections (or their prefixes) whose programs were exercised.
    pub reached: Vec<String>,
    /// Sections whose programs only the stimulus reaches, which failed.
    pub missed: Vec<String>,
}

/// Whether a tracefs is mounted where libbpf looks for it.
fn tracefs_mounted() -> bool {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// What keeps an attachment alive.
enum Guard {
    Link(#[allow(dead_code, reason = "held for its Drop")] libbpf_rs::Link),
    /// A tc filter, and its qdisc (dropped after the filter is detached).
    Tc(
        libbpf_rs::TcHook,
        #[allow(dead_code, reason = "held for its Drop")] Clsact,
    ),
    /// A link libbpf-rs has no attach call for (tcx, netkit), straight
    /// from libbpf.
    Raw(std::ptr::NonNull<libbpf_rs::libbpf_sys::bpf_link>),
    /// A device pair programs were attached to (netkit, veth).
    Pair(DevicePair),
    /// Where cgroup programs were attached.
    Cgroup(CgroupTarget),
    /// An XDP program attached through netlink to this device.
    XdpNetlink(i32),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Raw(link) = self {
            // SAFETY: the link came from libbpf, checked, and is destroyed once.
            unsafe { libbpf_rs::libbpf_sys::bpf_link__destroy(link.as_ptr()) };
        }
        if let Guard::Tc(hook, _) = self {
            let _ = hook.detach();
        }
        if let Guard::XdpNetlink(ifindex) = self {
            // SAFETY: detaches what xdp() attached to a device of ours.
            unsafe { libbpf_rs::libbpf_sys::bpf_xdp_detach(*ifindex, 0, std::ptr::null()) };
        }
    }
}

/// Attaches an XDP program to device `ifindex` through a BPF link; where
/// the kernel refuses XDP links (before 5.9: EINVAL), through netlink as
/// libbpf's `bpf_xdp_attach` and aya do there, noting the link's refusal.
fn xdp(
    prog: &ProgramMut,
    name: &str,
    ifindex: i32,
    notes: &mut Vec<String>,
) -> libbpf_rs::Result<Guard> {
    let refused = match prog.attach_xdp(ifindex) {
        Ok(link) => return Ok(Guard::Link(link)),
        Err(e) => e,
    };
    let errno = crate::evidence::errno_of(&format!("{refused:#}"));
    if !matches!(errno, Some(22 | 95 | 524)) {
        return Err(refused);
    }
    capture::take();
    // SAFETY: a loaded program's fd, a device of ours, no options.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_xdp_attach(
            ifindex,
            prog.as_fd().as_raw_fd(),
            0,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(libbpf_rs::Error::from(std::io::Error::from_raw_os_error(
            -rc,
        )));
    }
    notes.push(format!(
        "XDP program `{name}`: this kernel refused an XDP BPF link ({}; links are Linux 5.9), so it was attached through netlink, as libbpf's bpf_xdp_attach and aya do on such kernels (libbpf's bpf_program__attach_xdp, libbpf-rs's attach_xdp, use the link only)",
        refused.to_string().lines().next().unwrap_or_default()
    ));
    Ok(Guard::XdpNetlink(ifindex))
}

/// Attaches a tc program as a filter on device `ifindex`'s ingress. The
/// kernel picks the filter's handle and priority, so a filter already there
/// (a running tool's) is never replaced.
fn tc_filter(prog: &ProgramMut, ifindex: i32) -> libbpf_rs::Result<Guard> {
    let clsact = Clsact::add(ifindex)?;
    let mut hook = TcHookBuilder::new(prog.as_fd())
        .ifindex(ifindex)
        .hook(TC_INGRESS);
    Ok(Guard::Tc(hook.attach()?, clsact))
}

/// Attaches a `tcx/ingress` or `tcx/egress` program to device `ifindex`
/// through a tcx link (Linux 6.6); the direction is the program's expected
/// attach type.
fn tcx_link(
    prog: &ProgramMut,
    ifindex: i32,
) -> libbpf_rs::Result<std::ptr::NonNull<libbpf_rs::libbpf_sys::bpf_link>> {
    // SAFETY: a loaded program of a live object; no options.
    raw_link(prog, |p| unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_tcx(p, ifindex, std::ptr::null())
    })
}

/// Attaches a `netkit/primary` or `netkit/peer` program through a netkit
/// link (Linux 6.7) on the primary device `ifindex`; the side is the
/// program's expected attach type.
fn netkit_link(
    prog: &ProgramMut,
    ifindex: i32,
) -> libbpf_rs::Result<std::ptr::NonNull<libbpf_rs::libbpf_sys::bpf_link>> {
    // SAFETY: a loaded program of a live object; no options.
    raw_link(prog, |p| unsafe {
        libbpf_rs::libbpf_sys::bpf_program__attach_netkit(p, ifindex, std::ptr::null())
    })
}

/// A link from a libbpf attach call libbpf-rs does not wrap.
fn raw_link(
    prog: &ProgramMut,
    attach: impl FnOnce(*mut libbpf_rs::libbpf_sys::bpf_program) -> *mut libbpf_rs::libbpf_sys::bpf_link,
) -> libbpf_rs::Result<std::ptr::NonNull<libbpf_rs::libbpf_sys::bpf_link>> {
    let link = attach(libbpf_rs::AsRawLibbpf::as_libbpf_object(prog).as_ptr());
    // SAFETY: libbpf_get_error accepts any pointer libbpf returned.
    match unsafe { libbpf_rs::libbpf_sys::libbpf_get_error(link.cast()) } {
        0 => {
            std::ptr::NonNull::new(link).ok_or_else(|| std::io::Error::from_raw_os_error(22).into())
        }
        err => Err(std::io::Error::from_raw_os_error(-err as i32).into()),
    }
}

/// The USDT probe `bpfcompat:probe` of this binary (an SDT note, with no
/// arguments): what `usdt` programs are attached to in a guest.
#[inline(never)]
pub fn bpfcompat_usdt_site() {
    probe::probe!(bpfcompat, probe);
}

/// Attaches a `usdt` program to [`bpfcompat_usdt_site`] in this process.
fn usdt_here(prog: &ProgramMut) -> libbpf_rs::Result<libbpf_rs::Link> {
    std::hint::black_box(bpfcompat_usdt_site as fn());
    prog.attach_usdt(
        std::process::id() as i32,
        "/proc/self/exe",
        "bpfcompat",
        "probe",
    )
}

/// Attaches a uprobe to [`bpfcompat_uprobe_target`] in this binary.
fn uprobe_here(prog: &ProgramMut, retprobe: bool) -> libbpf_rs::Result<libbpf_rs::Link> {
    // Referenced, so that the linker keeps it and its symbol.
    std::hint::black_box(bpfcompat_uprobe_target as extern "C" fn());
    let opts = libbpf_rs::UprobeOpts {
        retprobe,
        func_name: Some("bpfcompat_uprobe_target".into()),
        ..Default::default()
    };
    prog.attach_uprobe_with_opts(-1, "/proc/self/exe", 0, opts)
}

fn attach_one(
    prog: &ProgramMut,
    section: &str,
    target: Option<&str>,
) -> libbpf_rs::Result<Option<Guard>> {
    let hook = Hook::new(section);
    // A kprobe retargeted by configuration attaches where the loader would.
    if let Some(func) = target
        && hook.is_kprobe()
    {
        let ret = hook.is_kretprobe();
        return prog.attach_kprobe(ret, func).map(|l| Some(Guard::Link(l)));
    }
    // A tracepoint retargeted by configuration: `category/name`.
    if let Some(tp) = target
        && hook.is_bare_tracepoint()
    {
        let (category, name) = tp.split_once('/').ok_or_else(|| {
            libbpf_rs::Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("attach_target `{tp}` for a tracepoint must be `category/name`"),
            ))
        })?;
        let category = libbpf_rs::TracepointCategory::Custom(category.to_string());
        return prog
            .attach_tracepoint(category, name)
            .map(|l| Some(Guard::Link(l)));
    }
    if let Some(how) = hook.uprobe_multi() {
        // Referenced, so that the linker keeps it and its symbol.
        std::hint::black_box(bpfcompat_uprobe_target as extern "C" fn());
        return prog
            .attach_uprobe_multi(
                std::process::id() as i32,
                "/proc/self/exe",
                "bpfcompat_uprobe_target",
                how.retprobe,
                how.session,
            )
            .map(|l| Some(Guard::Link(l)));
    }
    if hook.left_to_the_loader() {
        return Ok(None);
    }
    prog.attach().map(|l| Some(Guard::Link(l)))
}
