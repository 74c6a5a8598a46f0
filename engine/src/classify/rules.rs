//! The classification rules for one failed step, most structured first.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::Code;
use crate::releases::{
    attach_since, features, helper_id, helper_name, helper_since, kfunc_since, map_type_since,
    prog_type_since, release_older_than, struct_ops_since,
};
use crate::wire::{Hook, MapReport, ProgramReport, StepFailure};

/// Which step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Open,
    Object,
    MapCreate,
    ProgLoad,
    Attach,
}

/// What a rule concluded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub code: Code,
    pub message: String,
    pub remediation: Option<String>,
}

/// Everything known about one failed step.
pub(crate) struct Evidence<'a> {
    pub step: Step,
    pub failure: &'a StepFailure,
    pub program: Option<&'a ProgramReport>,
    pub map: Option<&'a MapReport>,
    /// Every map of the object (global data shows as `.bss`, `.data`,
    /// `.rodata` maps).
    pub object_maps: &'a [MapReport],
    pub kernel_btf: Option<bool>,
    /// The kernel's release (`uname -r`), when known.
    pub release: Option<&'a str>,
    /// The kernel's BPF-relevant config options (empty when unknown).
    pub kernel_config: &'a BTreeMap<String, String>,
}

fn v(code: Code, message: impl Into<String>, remediation: impl Into<String>) -> Verdict {
    Verdict {
        code,
        message: message.into(),
        remediation: Some(remediation.into()),
    }
}

fn since(what: &str, version: Option<&str>) -> String {
    match version {
        Some(ver) => format!("{what} needs Linux {ver}"),
        None => format!("{what} is not available on this kernel"),
    }
}

/// Classifies one failed step.
pub(crate) fn classify(e: &Evidence) -> Verdict {
    let mut verdict = classify_raw(e);
    verdict.message = verdict.message.trim_start_matches("libbpf: ").to_string();
    stand_in_refusal(e, verdict)
}

/// A placeholder program loaded against a stand-in and refused for what
/// the stand-in's prototype decides (the verifier's reading of its
/// arguments, its size of work, the stand-in missing): that is no verdict
/// on the program with its real target, so no confident code.
fn stand_in_refusal(e: &Evidence, verdict: Verdict) -> Verdict {
    let Some(stand_in) = e.program.and_then(|p| p.stand_in.as_deref()) else {
        return verdict;
    };
    let by_target = [
        Code::VerifierRejected,
        Code::VerifierLimit,
        Code::MissingAttachTarget,
    ];
    if e.step != Step::ProgLoad || !by_target.contains(&verdict.code) {
        return verdict;
    }
    let section = e.program.map_or("", |p| p.section.as_str());
    Verdict {
        code: Code::Unknown,
        message: format!(
            "loaded against the stand-in `{stand_in}` in place of the placeholder in `{section}`, the kernel said: {}",
            verdict.message
        ),
        remediation: Some(
            "the refusal may be the stand-in's arguments, not the real target's: name the loader's real target with `attach_target = [\"...\"]` in the program's table".into(),
        ),
    }
}

fn classify_raw(e: &Evidence) -> Verdict {
    RULES
        .iter()
        .find_map(|(_, rule)| rule(e))
        .unwrap_or_else(|| Verdict {
            code: Code::Unknown,
            message: first_line(e.failure),
            remediation: None,
        })
}

/// One rule: a verdict when the evidence is its case.
type Rule = fn(&Evidence) -> Option<Verdict>;

/// The rules in the order they are asked: libbpf's structured findings
/// first, then the kernel's own feature probes, then the verifier's words,
/// then errno alone. The first rule that matches decides.
pub(crate) const RULES: &[(&str, Rule)] = &[
    ("unprepared", unprepared),
    ("missing_kfunc", missing_kfunc),
    ("unresolved_weak_kfunc", unresolved_weak_kfunc),
    ("missing_btf", missing_btf),
    ("core_relocation", |e| text(e, "core_relocation")),
    ("struct_ops_link", struct_ops_link),
    ("struct_ops_type", struct_ops_type),
    ("map_type_probe", map_type_probe),
    ("aya_btf_map", aya_btf_map),
    ("map_contract", map_contract),
    ("global_data", global_data),
    ("aya_global_data", aya_global_data),
    ("prog_type_probe", prog_type_probe),
    ("helper_probe", helper_probe),
    ("verifier_unknown_helper", verifier_unknown_helper),
    ("unknown_ld_imm64", unknown_ld_imm64),
    ("helper_not_allowed", |e| text(e, "helper_not_allowed")),
    ("gpl_only", |e| text(e, "gpl_only")),
    ("old_kernel_words", old_kernel_words),
    ("missing_attach_target", |e| {
        text(e, "missing_attach_target")
    }),
    ("missing_argument", |e| text(e, "missing_argument")),
    ("verifier_limit", |e| text(e, "verifier_limit")),
    ("bounded_loop", |e| text(e, "bounded_loop")),
    ("kfunc_not_allowed", |e| text(e, "kfunc_not_allowed")),
    ("permission", permission),
    ("missing_config_option", missing_config_option),
    ("aya_expected_attach_type", aya_expected_attach_type),
    ("freplace_without_target", freplace_without_target),
    ("attach_type_too_new", attach_type_too_new),
    ("attach_errno", attach_errno),
    ("verifier_rejected", verifier_rejected),
];

/// A rule decided by the kernel's or libbpf's words alone: the first log
/// line holding one of `needles` (tried in order) is the message. The rules
/// are data, in `text_rules.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextRule {
    needles: Vec<String>,
    code: Code,
    remediation: String,
}

static TEXT_RULES: LazyLock<BTreeMap<String, TextRule>> = LazyLock::new(|| {
    toml::from_str(include_str!("text_rules.toml")).expect("text_rules.toml parses (tested)")
});

fn text(e: &Evidence, name: &str) -> Option<Verdict> {
    let rule = &TEXT_RULES[name];
    let line = find(e.failure, &rule.needles)?;
    Some(v(rule.code, line, rule.remediation.as_str()))
}

/// The first line of libbpf's or the verifier's log that contains any of
/// `needles`, tried in order.
fn find(f: &StepFailure, needles: &[impl AsRef<str>]) -> Option<String> {
    needles.iter().find_map(|needle| {
        f.libbpf_log
            .iter()
            .chain(f.verifier_log.iter())
            .find(|l| l.contains(needle.as_ref()))
            .cloned()
    })
}

/// The validator could not prepare the step (a device or cgroup to attach
/// to): the kernel was not asked, so no code of the kernel's is given.
fn unprepared(e: &Evidence) -> Option<Verdict> {
    let why = e.failure.unprepared.as_ref()?;
    Some(v(
        Code::Unknown,
        format!("not judged: bpfcompat could not prepare this step here: {why}"),
        "the kernel was not asked; the cause is on this machine (e.g. a missing veth module, a read-only cgroup2): fix it, or judge with --mode load",
    ))
}

/// Unresolved kfuncs, straight from libbpf's extern resolution.
fn missing_kfunc(e: &Evidence) -> Option<Verdict> {
    let k = e.failure.missing_kfuncs.first()?;
    Some(v(
        Code::MissingKfunc,
        find(e.failure, &["extern (func ksym)"]).unwrap_or_else(|| format!("kfunc {k} not found")),
        format!(
            "{}; declare it __weak and guard the call with bpf_ksym_exists({k}) to run without it",
            since(&format!("kfunc {k}"), kfunc_since(k))
        ),
    ))
}

/// A `__weak` kfunc this kernel lacks: libbpf loads the program with the
/// call unresolved, and the verifier refuses it where the call is reachable.
fn unresolved_weak_kfunc(e: &Evidence) -> Option<Verdict> {
    const WORDS: &str = "is referenced but wasn't resolved";
    let line = find(e.failure, &[WORDS])?;
    let k = line
        .split('\'')
        .nth(1)
        .filter(|_| line.starts_with("kfunc '"))?;
    Some(v(
        Code::MissingKfunc,
        line.clone(),
        format!(
            "{}; it is declared __weak, so the program loads without it only where every call is guarded with bpf_ksym_exists({k})",
            since(&format!("kfunc {k}"), kfunc_since(k))
        ),
    ))
}

/// No kernel BTF for an object that needs it.
fn missing_btf(e: &Evidence) -> Option<Verdict> {
    if e.kernel_btf != Some(false) {
        return None;
    }
    // The verifier read this program: libbpf's words about BTF were about
    // another program of the object (an fentry beside it), and the
    // verifier's say why this one was refused. Poisoned CO-RE
    // instructions (0xbad2310) still mean the missing BTF.
    let log = e.failure.verifier_log.join("\n");
    if !log.is_empty() && !log.contains("195896080") {
        return None;
    }
    let line = find(
        e.failure,
        &[
            "vmlinux BTF",
            "failed to find valid kernel BTF",
            "the kernel's BTF (/sys/kernel/btf/vmlinux)",
        ],
    )?;
    Some(v(
        Code::MissingBtf,
        line,
        "this kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): ship a BTF file for it (e.g. from BTFHub) and pass it as btf_custom_path, or avoid CO-RE and BTF-based program types",
    ))
}

/// The map whose creation failed, when that is the failed step.
fn failed_map<'a>(e: &Evidence<'a>) -> Option<&'a MapReport> {
    (e.step == Step::MapCreate).then_some(e.map).flatten()
}

/// A `.struct_ops.link` map the kernel refused, while the same object
/// loads with `BPF_F_LINK` cleared: struct_ops without links.
fn struct_ops_link(e: &Evidence) -> Option<Verdict> {
    let m =
        failed_map(e).filter(|m| m.is_struct_ops_link() && m.loads_without_link == Some(true))?;
    Some(v(
        Code::UnsupportedFeature,
        format!(
            "map `{}` (.struct_ops.link) was refused, and loads without the link flag: {}",
            m.name,
            first_line(e.failure)
        ),
        format!(
            "struct_ops links need Linux {}: register it from SEC(\".struct_ops\") with bpf_map__attach_struct_ops() on older kernels",
            features::STRUCT_OPS_LINK
        ),
    ))
}

/// libbpf found no struct_ops of that kind in the kernel's BTF: the kernel
/// cannot run BPF implementations of that struct.
fn struct_ops_type(e: &Evidence) -> Option<Verdict> {
    let line = find(e.failure, &["is not found in kernel BTF"])?;
    let kind = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("bpf_struct_ops_"))?
        .to_string();
    Some(v(
        Code::UnsupportedFeature,
        line,
        since(&format!("a struct_ops {kind}"), struct_ops_since(&kind)),
    ))
}

/// The kernel's map-type probe said no.
fn map_type_probe(e: &Evidence) -> Option<Verdict> {
    let m = failed_map(e)?;
    let since = map_type_since(&m.map_type);
    // The probe could not tell (storage maps' probes need kernel BTF, which
    // a kernel that old may lack): EINVAL on a release before the type's.
    let by_release = m.type_supported.is_none()
        && e.failure.errno == Some(22)
        && e.release
            .zip(since)
            .and_then(|(r, s)| release_older_than(r, s))
            == Some(true);
    if m.type_supported != Some(false) && !by_release {
        return None;
    }
    let subject = match by_release {
        true => format!(
            "map `{}` of type {} (this kernel predates the type; its probe could not tell)",
            m.name, m.map_type
        ),
        false => format!("map `{}` of type {}", m.name, m.map_type),
    };
    type_refused(
        e,
        Code::UnsupportedMapType,
        subject,
        &format!("a {} map", m.map_type),
        since,
    )
}

/// aya creates a BTF-defined map with its BTF type IDs and the object's
/// BTF (aya 0.14's `bpf_create_map`). Kernels before 4.18 do not know those
/// fields; where a kernel refuses the object's BTF, aya goes on without it
/// and the type IDs point at no BTF. Either way, EINVAL. Seen on Ubuntu's
/// 4.15, 4.18, 5.0 and 5.3 for an object rustc built (refused) and 5.4
/// (accepted): a refusal on 5.4 or later is not this, and stays unexplained.
fn aya_btf_map(e: &Evidence) -> Option<Verdict> {
    failed_map(e)?;
    let line = find(e.failure, &["is BTF-defined (.maps): created with its BTF"])?;
    let older = release_older_than(e.release?, features::AYA_BTF_MAPS)?;
    (older && e.failure.errno == Some(22)).then(|| {
        v(
            Code::UnsupportedFeature,
            format!("{}: {line}", first_line(e.failure)),
            format!(
                "aya creates BTF-defined maps with their BTF type IDs and the object's BTF, which kernels before {} refuse (before 4.18 the fields are unknown; later, aya goes without BTF the kernel does not load): declare the map with aya's legacy #[map] (the `maps` section) for older kernels",
                features::AYA_BTF_MAPS
            ),
        )
    })
}

/// A verdict on a map or program type the kernel's probe refused: what was
/// refused, the kernel's words, and the release that brought the type.
/// `None` where the kernel is that release or newer: its probe was refused
/// for another reason (privileges, lockdown, a build option), which later
/// rules or the raw evidence must tell.
fn type_refused(
    e: &Evidence,
    code: Code,
    subject: String,
    what: &str,
    floor: Option<&'static str>,
) -> Option<Verdict> {
    if let (Some(release), Some(floor)) = (e.release, floor)
        && release_older_than(release, floor) == Some(false)
    {
        return None;
    }
    Some(v(
        code,
        format!("{subject}: {}", first_line(e.failure)),
        since(what, floor),
    ))
}

/// A map left unsized for the loader to size at run time. Ring buffers
/// (key and value 0) and storage maps (`max_entries` 0) are declared that
/// way by definition: a zero there is no contract.
fn map_contract(e: &Evidence) -> Option<Verdict> {
    let zero_by_definition = |t: &str| t.contains("ringbuf") || t.contains("storage");
    let m =
        failed_map(e).filter(|m| m.declared.contains(&0) && !zero_by_definition(&m.map_type))?;
    let [entries, key, value] = m.declared;
    Some(v(
        Code::MapContract,
        format!(
            "map `{}` is declared with max_entries {entries}, key_size {key}, value_size {value}: {}",
            m.name,
            first_line(e.failure)
        ),
        format!(
            "the real loader sizes this map at run time: declare its values as a fix-up ([objects.<name>.maps.{}] max_entries = …, or \"cpus\")",
            m.name
        ),
    ))
}

/// Global variables on a kernel without global data maps.
fn global_data(e: &Evidence) -> Option<Verdict> {
    let m = failed_map(e)?;
    find(e.failure, &["support global data"])?;
    Some(v(
        Code::UnsupportedFeature,
        format!("map `{}`: {}", m.name, first_line(e.failure)),
        format!(
            "global variables (.data/.rodata/.bss maps) need Linux {}",
            features::GLOBAL_DATA
        ),
    ))
}

/// aya leaves out the global-data maps of a kernel that has none (before
/// 5.2), and then cannot place the variables' relocations: its words name a
/// missing section, not the kernel's lack.
fn aya_global_data(e: &Evidence) -> Option<Verdict> {
    let line = find(e.failure, &["not found, referenced by symbol"])?;
    let older = release_older_than(e.release?, features::GLOBAL_DATA)?;
    (older && e.failure.error.starts_with("aya:") && has_global_data(e)).then(|| {
        v(
            Code::UnsupportedFeature,
            line,
            format!(
                "global variables (.bss/.data/.rodata) need Linux {}: aya creates no maps for them on this kernel; keep such state in an explicit array map for older kernels",
                features::GLOBAL_DATA
            ),
        )
    })
}

/// Whether the object has global variables (libbpf's and aya's names of
/// their maps).
fn has_global_data(e: &Evidence) -> bool {
    e.object_maps.iter().any(|m| {
        [".bss", ".data", ".rodata"]
            .iter()
            .any(|s| m.name.contains(s))
    })
}

/// The kernel's program-type probe said no.
fn prog_type_probe(e: &Evidence) -> Option<Verdict> {
    let p = e.program.filter(|p| p.type_supported == Some(false))?;
    type_refused(
        e,
        Code::UnsupportedProgType,
        format!(
            "program `{}` ({}, section {})",
            p.name, p.prog_type, p.section
        ),
        &format!("a {} program", p.prog_type),
        prog_type_since(&p.prog_type),
    )
}

/// The kernel's helper probe says this program type cannot call a helper
/// the program calls.
fn helper_probe(e: &Evidence) -> Option<Verdict> {
    let p = e.program?;
    let candidates: Vec<u32> = e
        .failure
        .unsupported_helpers
        .iter()
        .copied()
        .filter(|id| !REWRITTEN_BY_LIBBPF.contains(id))
        .collect();
    // The helper the verifier rejected, when it names one; the probe's
    // first otherwise (the verifier may speak of something else entirely).
    let named = find(e.failure, UNKNOWN_HELPER).and_then(|l| helper_in_text(&l));
    let id = match named {
        Some(id) if candidates.contains(&id) => id,
        Some(_) => return None,
        None => *candidates.first()?,
    };
    let name = helper_name(id).unwrap_or_else(|| format!("helper #{id}"));
    Some(v(
        Code::UnsupportedHelper,
        format!(
            "{name} (#{id}) is not available to {} programs on this kernel (the kernel's helper probe); verifier: {}",
            p.prog_type,
            verifier_reason(e.failure).unwrap_or_else(|| first_line(e.failure))
        ),
        helper_fix(e, &name, Some(id)),
    ))
}

/// What to do about a helper the kernel refused: its release where the
/// kernel is older than that; where the helper exists here already, that
/// this program type may not call it (helpers are allowed per type, and
/// kernels allow more types over time).
fn helper_fix(e: &Evidence, name: &str, id: Option<u32>) -> String {
    let added = id.and_then(helper_since);
    let older = e
        .release
        .zip(added)
        .and_then(|(release, added)| release_older_than(release, added));
    let prog_type = e.program.map_or("this kind of", |p| p.prog_type.as_str());
    match (added, older) {
        (Some(added), Some(false)) => format!(
            "{name} exists on this kernel (since Linux {added}) but not for {prog_type} programs: call it from a program type that may, or require a kernel that allows it here"
        ),
        (Some(_), _) => since(name, added),
        (None, _) => format!("{name} is not available to {prog_type} programs on this kernel"),
    }
}

/// Helpers libbpf rewrites to an older one where the kernel lacks them
/// (`bpf_probe_read_{user,kernel}[_str]` → `bpf_probe_read[_str]`): the
/// kernel never sees them, so they are never the one to blame.
const REWRITTEN_BY_LIBBPF: &[u32] = &[112, 113, 114, 115];

/// The verifier's words for a helper it does not know.
const UNKNOWN_HELPER: &[&str] = &["unknown func ", "invalid func unknown#"];

/// The verifier does not know a helper.
fn verifier_unknown_helper(e: &Evidence) -> Option<Verdict> {
    let line = find(e.failure, UNKNOWN_HELPER)?;
    let id = helper_in_text(&line);
    let name = id
        .and_then(helper_name)
        .unwrap_or_else(|| "a helper".into());
    Some(v(Code::UnsupportedHelper, line, helper_fix(e, &name, id)))
}

/// The verifier does not know a kind of 64-bit immediate load the program
/// has: a global variable's address, a kernel symbol's or a callback's.
fn unknown_ld_imm64(e: &Evidence) -> Option<Verdict> {
    let line = find(e.failure, &["unrecognized bpf_ld_imm64 insn"])?;
    let fix = if has_global_data(e) {
        format!(
            "global variables (.bss/.data/.rodata) need Linux {}: keep such state in an explicit array map for older kernels",
            features::GLOBAL_DATA
        )
    } else {
        format!(
            "this kernel's verifier does not know an instruction the program uses: kernel symbols (__ksym) need Linux {}, callbacks (bpf_loop, bpf_for_each_map_elem, timers) {}",
            features::KSYM,
            features::CALLBACK
        )
    };
    Some(v(Code::UnsupportedFeature, line, fix))
}

/// EPERM with no verifier words.
fn permission(e: &Evidence) -> Option<Verdict> {
    let f = e.failure;
    (f.verifier_log.is_empty() && f.errno == Some(1)).then(|| {
        v(
            Code::Permission,
            first_line(f),
            "the kernel refused with EPERM and no verifier log: check capabilities (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN), kernel lockdown and LSM policy",
        )
    })
}

/// An attach the kernel refused because it was built without the option
/// the attach type needs (known from the config its package ships).
fn missing_config_option(e: &Evidence) -> Option<Verdict> {
    let p = e.program.filter(|_| e.step == Step::Attach)?;
    let hook = Hook::new(&p.section);
    let (option, what, instead) = if hook.is_kprobe_multi() {
        ("CONFIG_FPROBE", "kprobe.multi links", "plain kprobes")
    } else if hook.is_netkit() {
        ("CONFIG_NETKIT", "netkit links", "tcx or tc")
    } else {
        return None;
    };
    let value = e.kernel_config.get(option)?;
    (value == "n").then(|| {
        v(
            Code::KernelConfig,
            format!("{option} is not set in this kernel: {}", first_line(e.failure)),
            format!(
                "{what} need {option}: attach with {instead} on kernels built without it (a variant), or use a kernel that sets it"
            ),
        )
    })
}

/// aya sets a program's expected attach type when it loads it (XDP always,
/// cgroup socket programs by their section), and kernels before 4.17 do not
/// know the field: EINVAL with no verifier log. libbpf leaves it out there.
fn aya_expected_attach_type(e: &Evidence) -> Option<Verdict> {
    let f = e.failure;
    let p = e.program.filter(|_| {
        e.step == Step::ProgLoad
            && f.error.starts_with("aya:")
            && f.verifier_log.is_empty()
            && f.errno == Some(22)
    })?;
    let sets_it = p.prog_type == "xdp"
        || p.prog_type == "cgroup_sock"
        || (p.prog_type == "cgroup_skb" && Hook::new(&p.section).is_cgroup_skb_with_direction());
    let release = e.release?;
    (sets_it && release_older_than(release, features::EXPECTED_ATTACH_TYPE)?).then(|| {
        v(
            Code::UnsupportedFeature,
            format!(
                "aya sets the program's expected attach type, which this kernel does not know: {}",
                f.error
            ),
            format!(
                "a program's expected attach type at load needs Linux {} (this kernel is {release}): aya cannot load this program here; libbpf leaves the field out on such kernels",
                features::EXPECTED_ATTACH_TYPE
            ),
        )
    })
}

/// An attach the kernel refused, of a type newer than the kernel: its
/// release is known and older than the one that added the attach type.
/// An freplace program replaces a function of another loaded program, which
/// its loader names (`bpf_program__set_attach_target` with that program's
/// descriptor); without it libbpf cannot even prepare the load, on any
/// kernel. No verdict, and what would give one.
fn freplace_without_target(e: &Evidence) -> Option<Verdict> {
    let p = e.program.filter(|p| Hook::new(&p.section).is_freplace())?;
    (e.step == Step::ProgLoad && no_verifier_words(e.failure) && e.failure.errno == Some(22))
        .then(|| {
            v(
                Code::Unknown,
                first_line(e.failure),
                format!(
                    "`{}` replaces a function of another program, which its loader loads first and names (bpf_program__set_attach_target); judge it with that loader, in command mode or a #[bpfcompat::kernel_test] (and set `autoload = false` for it here)",
                    p.name
                ),
            )
        })
}

/// Whether the verifier said nothing of the program: no log, or only its
/// closing count of an empty walk ("processed 0 insns", as where it refuses
/// the attach target before the first instruction).
fn no_verifier_words(f: &StepFailure) -> bool {
    f.verifier_log
        .iter()
        .all(|l| l.trim().is_empty() || l.starts_with("processed 0 insns"))
}

fn attach_type_too_new(e: &Evidence) -> Option<Verdict> {
    // At load, a kernel older than the program's expected attach type
    // refuses the attribute itself, before the verifier says a word: EINVAL
    // for a field it does not know (from 4.x), E2BIG for an attribute longer
    // than its own (4.4).
    let refused_attr = e.step == Step::ProgLoad
        && no_verifier_words(e.failure)
        && matches!(e.failure.errno, Some(22) | Some(7));
    let p = e
        .program
        .filter(|_| e.step == Step::Attach || refused_attr)?;
    // XDP reaches older kernels through netlink, cgroup programs through
    // BPF_PROG_ATTACH: their floor is the BPF link's, which only attaching
    // meets.
    let hook = Hook::new(&p.section);
    if e.step != Step::Attach && (hook.is_xdp() || hook.is_cgroup()) {
        return None;
    }
    let (what, since) = attach_since(hook)?;
    let release = e.release?;
    release_older_than(release, since)?.then(|| {
        v(
            Code::UnsupportedAttachType,
            first_line(e.failure),
            format!(
                "{what} need Linux {since} (this kernel is {release}): {}, or make the program optional",
                older_way(hook)
            ),
        )
    })
}

/// How a loader attaches a section's program on kernels older than its link.
fn older_way(hook: Hook) -> &'static str {
    if hook.is_xdp() {
        "attach through netlink on older kernels (libbpf's bpf_xdp_attach; aya falls back to it)"
    } else if hook.is_cgroup() {
        "attach with BPF_PROG_ATTACH on older kernels (libbpf's bpf_prog_attach; aya falls back to it)"
    } else if hook.is_tcx() {
        "attach as a tc filter through netlink on older kernels (libbpf's bpf_tc_attach on a clsact qdisc; aya falls back to it)"
    } else {
        "attach another way on older kernels (a variant)"
    }
}

/// What an older kernel says, or does not say, for a feature it lacks,
/// attributed by what the load asked for and the release. Each entry was
/// seen on the oldest catalogue kernel that lacks the feature (see the e2e
/// test `old_kernels_words_name_the_feature_they_lack`).
fn old_kernel_words(e: &Evidence) -> Option<Verdict> {
    if e.step != Step::ProgLoad {
        return None;
    }
    let (release, p, f) = (e.release?, e.program?, e.failure);
    let older = |since: &str| release_older_than(release, since) == Some(true);
    let said = |needles: &[&str]| find(f, needles);
    // A refusal before the verifier ran: no log but its statistics line.
    let no_log = f
        .verifier_log
        .iter()
        .all(|l| l.trim().is_empty() || l.starts_with("processed "));
    let hook = Hook::new(&p.section);
    let feature = |message: String, fix: String| Some(v(Code::UnsupportedFeature, message, fix));
    // 4.4-5.11: the verifier knows BPF_XADD alone and refuses any other
    // atomic operation (the same opcode, a non-zero imm).
    if let Some(line) = said(&[
        "BPF_STX uses reserved fields",
        "BPF_XADD uses reserved fields",
    ]) && older("5.12")
    {
        return feature(
            line,
            "atomic operations other than a plain add (fetch-and-add whose result is read, and/or/xor, xchg, cmpxchg) need Linux 5.12: on older kernels add without reading the result (__sync_fetch_and_add as a statement) or keep per-CPU values".into(),
        );
    }
    // Before 4.16 a call to another BPF function reads as a helper call,
    // and the function's body as code nothing reaches.
    if let Some(line) = said(&["unreachable insn"])
        && older("4.16")
    {
        return feature(
            line,
            "calls between BPF functions need Linux 4.16: mark the functions `static __always_inline` for older kernels".into(),
        );
    }
    // Before 5.2 no program may have more than 4096 instructions (EINVAL
    // on 4.4, E2BIG later), refused before any log.
    if let Some(n) = p.insn_count.filter(|n| *n > 4096)
        && matches!(f.errno, Some(7 | 22))
        && no_log
        && older("5.2")
    {
        return Some(v(
            Code::VerifierLimit,
            format!(
                "{} ({n} instructions; this kernel takes at most 4096)",
                first_line(f)
            ),
            "programs of more than 4096 instructions need Linux 5.2: split the program (tail calls) or unroll less for older kernels",
        ));
    }
    // Program flags an older kernel does not know: EINVAL, no log.
    if f.errno == Some(22) && no_log {
        if hook.kind() == "xdp.frags" && older("5.18") {
            return feature(
                first_line(f),
                "XDP programs for fragmented packets (SEC(\"xdp.frags\"), BPF_F_XDP_HAS_FRAGS) need Linux 5.18: load it as plain XDP on older kernels".into(),
            );
        }
        if hook.sleepable() && older("5.10") {
            return feature(
                first_line(f),
                "sleepable programs (BPF_F_SLEEPABLE) need Linux 5.10 (sleepable uprobes 6.1): use the non-sleepable section on older kernels".into(),
            );
        }
    }
    // 5.10 onwards names the kinds it lets sleep.
    if let Some(line) = said(&["programs can be sleepable"])
        && hook.sleepable()
    {
        let release = match hook.base_kind() {
            "uprobe" | "uretprobe" => Some("6.1"),
            "fentry" | "fexit" | "fmod_ret" | "lsm" => Some("5.10"),
            _ => None,
        };
        return feature(
            line,
            format!(
                "{}: use the non-sleepable section on this kernel",
                since(
                    &format!("a sleepable {} program", hook.base_kind()),
                    release
                )
            ),
        );
    }
    None
}

/// An attach failure, by errno.
fn attach_errno(e: &Evidence) -> Option<Verdict> {
    if e.step != Step::Attach {
        return None;
    }
    let f = e.failure;
    Some(match f.errno {
        Some(2) if f.tracefs == Some(false) => v(
            Code::KernelConfig,
            format!(
                "tracefs is not mounted, so the hook cannot be found: {}",
                first_line(f)
            ),
            "tracepoints, legacy kprobes and uprobes are found through tracefs: mount it (mount -t tracefs nodev /sys/kernel/tracing) where the loader runs",
        ),
        Some(2) | Some(3) => v(
            Code::MissingAttachTarget,
            first_line(f),
            "the hook (function, tracepoint or symbol) does not exist on this kernel, nor in a module loaded here (bpfcompat's guests load only the modules BPF itself needs, so a filesystem's or a driver's function is missing there too): choose the target per kernel or make the program optional",
        ),
        Some(95) | Some(524)
            if e.program
                .is_some_and(|p| Hook::new(&p.section).is_struct_ops()) =>
        {
            v(
                Code::UnsupportedAttachType,
                first_line(f),
                "the kernel has this struct_ops type but will not register it (some, such as bpf_dummy_ops, exist only for BPF_PROG_TEST_RUN): a loader that only test-runs these programs is judged by --mode load",
            )
        }
        // The kernel's own checks of the ops a struct_ops map registers (a
        // required callback missing, a name already taken).
        Some(22)
            if e.program
                .is_some_and(|p| Hook::new(&p.section).is_struct_ops()) =>
        {
            v(
                Code::AttachFailed,
                first_line(f),
                "the kernel refused to register the struct_ops map (its checks of the ops: a callback it requires is missing, or the name is taken): complete the map, or, where the loader never registers it, say so with `autocreate = false` in the map's table ([objects.<name>.maps.<map>])",
            )
        }
        // The kernel checks, when a raw tracepoint is opened, that the
        // program reads no argument past the tracepoint's last: with a valid
        // program that is the only EINVAL left.
        Some(22)
            if e.program
                .is_some_and(|p| Hook::new(&p.section).is_raw_tracepoint()) =>
        {
            v(
                Code::AttachFailed,
                first_line(f),
                "the program reads more arguments than this raw tracepoint has on this kernel: its prototype changed between releases (or in this distribution's backports); read the arguments the kernel's prototype has, per kernel",
            )
        }
        Some(95) | Some(524) => v(
            Code::UnsupportedAttachType,
            first_line(f),
            "this kernel cannot attach this kind of program this way: use an older attach method (e.g. kprobe instead of kprobe.multi, perf-event tracepoint instead of BPF link)",
        ),
        _ => v(
            Code::AttachFailed,
            first_line(f),
            "attaching failed; see the libbpf log",
        ),
    })
}

fn verifier_rejected(e: &Evidence) -> Option<Verdict> {
    let reason = verifier_reason(e.failure)?;
    Some(v(
        Code::VerifierRejected,
        reason,
        "the verifier rejected the program on this kernel: read the log tail; verifiers differ between releases in what they can prove",
    ))
}

/// The last line of the verifier log that says something (not the statistics).
pub(crate) fn verifier_reason(f: &StepFailure) -> Option<String> {
    f.verifier_log
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && !l.starts_with("-- END")
        })
        .map(str::to_string)
}

/// libbpf's most specific line, else the error.
/// libbpf's own words for a failure: its first line that says what failed,
/// else the first that says what is missing or wrong, else the bare error
/// (an errno such as "No such process" says little on its own).
fn first_line(f: &StepFailure) -> String {
    let says = |words: &[&str]| {
        f.libbpf_log
            .iter()
            .find(|l| words.iter().any(|w| l.contains(w)) && !l.contains("failed to load object"))
    };
    says(&["failed"])
        .or_else(|| {
            says(&[
                "not found",
                "not supported",
                "unsupported",
                "invalid",
                "unknown",
            ])
        })
        .map(|l| l.trim_start_matches("libbpf: ").to_string())
        .unwrap_or_else(|| f.error.clone())
}

/// `unknown func bpf_loop#181` / `invalid func unknown#181` → 181.
fn helper_in_text(line: &str) -> Option<u32> {
    if let Some(pos) = line.rfind('#') {
        let digits: String = line[pos + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(id) = digits.parse() {
            return Some(id);
        }
    }
    let word = line.split_whitespace().find(|w| w.starts_with("bpf_"))?;
    helper_id(word.split('#').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(verifier: &[&str], libbpf: &[&str], errno: Option<i32>) -> StepFailure {
        StepFailure {
            errno,
            error: "Invalid argument (os error 22)".into(),
            libbpf_log: libbpf.iter().map(|s| s.to_string()).collect(),
            verifier_log: verifier.iter().map(|s| s.to_string()).collect(),
            ..StepFailure::default()
        }
    }

    /// A step that failed with one line and no errno, as aya's words come.
    fn plain_failure(line: &str) -> StepFailure {
        StepFailure {
            error: line.into(),
            libbpf_log: vec![line.into()],
            ..StepFailure::default()
        }
    }

    /// A step that failed with libbpf's one `line` and `errno`.
    fn libbpf_failure(line: &str, errno: i32) -> StepFailure {
        failure(&[], &[line], Some(errno))
    }

    fn map(name: &str, map_type: &str, declared: [u32; 3]) -> MapReport {
        MapReport {
            name: name.into(),
            map_type: map_type.into(),
            type_supported: None,
            declared,
            flags: 0,
            loads_without_link: None,
            mmapable: None,
            create: crate::wire::Outcome::Ok,
        }
    }

    fn program(prog_type: &str) -> ProgramReport {
        ProgramReport {
            name: "p".into(),
            section: "tracepoint/x/y".into(),
            prog_type: prog_type.into(),
            type_supported: Some(true),
            helpers: vec![],
            load: crate::wire::Outcome::Ok,
            attach: crate::wire::Outcome::Ok,
            fire: None,
            optional: false,
            complexity: None,
            insn_count: None,
            stand_in: None,
        }
    }

    /// A program of `prog_type` in `section`.
    fn program_in(prog_type: &str, section: &str) -> ProgramReport {
        ProgramReport {
            section: section.into(),
            ..program(prog_type)
        }
    }

    /// The verdict on one failed step, on a kernel whose config is unknown.
    fn judge(
        step: Step,
        failure: &StepFailure,
        program: Option<&ProgramReport>,
        map: Option<&MapReport>,
        kernel_btf: Option<bool>,
    ) -> Verdict {
        classify(&Evidence {
            step,
            failure,
            program,
            map,
            object_maps: map.map(std::slice::from_ref).unwrap_or_default(),
            kernel_btf,
            release: None,
            kernel_config: &BTreeMap::new(),
        })
    }

    /// The verdict on a program's failed step on a kernel of `release` with
    /// `config`.
    fn on_kernel(
        step: Step,
        failure: &StepFailure,
        p: &ProgramReport,
        release: &str,
        config: &BTreeMap<String, String>,
    ) -> Verdict {
        classify(&Evidence {
            step,
            failure,
            program: Some(p),
            map: None,
            object_maps: &[],
            kernel_btf: Some(true),
            release: Some(release),
            kernel_config: config,
        })
    }

    /// The verdict when opening or loading the object failed with libbpf's
    /// `lines` in the log.
    fn libbpf_says(lines: &[&str], errno: Option<i32>, kernel_btf: Option<bool>) -> Verdict {
        judge(
            Step::Object,
            &failure(&[], lines, errno),
            None,
            None,
            kernel_btf,
        )
    }

    /// The remediation of a verdict that must have one.
    fn remedy(v: &Verdict) -> &str {
        v.remediation.as_deref().expect("a remediation")
    }

    #[test]
    fn libbpfs_words_about_btf_do_not_outrank_the_verifiers_about_this_program() {
        // A kprobe beside an fentry on a kernel without BTF: libbpf's line
        // about vmlinux BTF came from the fentry; the verifier refused the
        // kprobe for its global data.
        let mut f = failure(&["unrecognized bpf_ld_imm64 insn"], &[], Some(22));
        f.libbpf_log = vec!["libbpf: Error loading vmlinux BTF: -ESRCH".into()];
        let got = judge(
            Step::ProgLoad,
            &f,
            Some(&program("kprobe")),
            None,
            Some(false),
        );
        assert_ne!(got.code, Code::MissingBtf, "{got:?}");
        // Without a verifier log, the missing BTF is the cause.
        f.verifier_log.clear();
        let got = judge(
            Step::ProgLoad,
            &f,
            Some(&program("tracing")),
            None,
            Some(false),
        );
        assert_eq!(got.code, Code::MissingBtf, "{got:?}");
    }

    #[test]
    fn a_refusal_against_a_placeholders_stand_in_is_no_confident_code() {
        let mut p = program_in("tracing", "fentry/dummy_file_open");
        p.stand_in = Some("bpf_fentry_test6".into());
        let rejected = failure(
            &[
                "0: (79) r1 = *(u64 *)(r1 +0)",
                "R1 invalid mem access 'scalar'",
            ],
            &[],
            Some(13),
        );
        let got = load(&rejected, &p);
        assert_eq!(got.code, Code::Unknown, "{got:?}");
        assert!(
            got.message.contains("stand-in `bpf_fentry_test6`"),
            "{got:?}"
        );
        assert!(got.message.contains("invalid mem access"), "{got:?}");
        assert!(got.remediation.unwrap().contains("attach_target"));
        // The same refusal of a program with its own target is the verifier's.
        p.stand_in = None;
        assert_eq!(load(&rejected, &p).code, Code::VerifierRejected);
        // What does not depend on the target keeps its code.
        p.stand_in = Some("bpf_fentry_test6".into());
        let helper = failure(
            &["0: (85) call unknown#999999", "invalid func unknown#999999"],
            &[],
            Some(22),
        );
        assert_ne!(load(&helper, &p).code, Code::Unknown);
    }

    fn load(f: &StepFailure, p: &ProgramReport) -> Verdict {
        judge(Step::ProgLoad, f, Some(p), None, Some(true))
    }

    /// The words seen on Ubuntu's 4.4 and 4.15, 5.4 and Debian's 5.10 (the
    /// e2e test `old_kernels_words_name_the_feature_they_lack` runs them).
    #[test]
    fn old_kernels_words_name_the_feature_only_where_the_release_lacks_it() {
        let none = BTreeMap::new();
        let kprobe = program_in("kprobe", "kprobe/do_unlinkat");
        let on = |f: &StepFailure, p: &ProgramReport, release: &str| {
            on_kernel(Step::ProgLoad, f, p, release, &none)
        };
        let atomics = failure(&["BPF_STX uses reserved fields"], &[], Some(22));
        let calls = failure(&["unreachable insn 10"], &[], Some(22));
        // No log: a long program before 5.2, by its length only.
        let silent = libbpf_failure("libbpf: prog 'p': failed to load: -E2BIG", 7);
        let long = ProgramReport {
            insn_count: Some(6305),
            stand_in: None,
            ..kprobe.clone()
        };
        // Where the release has the feature, the same words are the
        // verifier's; without the length, no limit is claimed.
        for (f, p, release, code) in [
            (
                &atomics,
                &kprobe,
                "4.15.0-142-generic",
                Code::UnsupportedFeature,
            ),
            (
                &atomics,
                &kprobe,
                "6.1.0-9-cloud-amd64",
                Code::VerifierRejected,
            ),
            (
                &calls,
                &kprobe,
                "4.4.0-210-generic",
                Code::UnsupportedFeature,
            ),
            (
                &calls,
                &kprobe,
                "5.10.0-46-cloud-amd64",
                Code::VerifierRejected,
            ),
            (&silent, &long, "4.15.0-142-generic", Code::VerifierLimit),
        ] {
            assert_eq!(on(f, p, release).code, code, "{f:?} on {release}");
        }
        assert!(remedy(&on(&atomics, &kprobe, "4.15.0-142-generic")).contains("need Linux 5.12"));
        for (p, release) in [
            (&kprobe, "4.15.0-142-generic"),
            (&long, "5.4.0-216-generic"),
        ] {
            assert_ne!(
                on(&silent, p, release).code,
                Code::VerifierLimit,
                "{release}"
            );
        }
        // Unknown program flags: EINVAL, no log.
        let einval = libbpf_failure("libbpf: prog 'p': failed to load: -EINVAL", 22);
        let frags = program_in("xdp", "xdp.frags");
        let got = on(&einval, &frags, "5.10.0-46-cloud-amd64");
        assert!(remedy(&got).contains("need Linux 5.18"), "{got:?}");
        let sleepy = program_in("kprobe", "uprobe.s//proc/self/exe:main");
        let got = on(&einval, &sleepy, "5.4.0-216-generic");
        assert!(remedy(&got).contains("need Linux 5.10"), "{got:?}");
        let named = failure(
            &["Only fentry/fexit/fmod_ret and lsm programs can be sleepable"],
            &[],
            Some(22),
        );
        let got = on(&named, &sleepy, "5.10.0-46-cloud-amd64");
        assert_eq!(
            remedy(&got),
            "a sleepable uprobe program needs Linux 6.1: use the non-sleepable section on this kernel"
        );
        // The old GPL wording.
        let gpl = failure(
            &["cannot call GPL only function from proprietary program"],
            &[],
            Some(22),
        );
        assert_eq!(on(&gpl, &kprobe, "4.15.0-142-generic").code, Code::GplOnly);
    }

    #[test]
    fn helper_probe_beats_a_misleading_verifier_line() {
        // Linux 5.10 on a bpf_loop program: the verifier talks about func_info.
        let mut f = failure(
            &["number of funcs in func_info doesn't match number of subprogs"],
            &[],
            Some(22),
        );
        f.unsupported_helpers = vec![181];
        let got = load(&f, &program("tracepoint"));
        assert_eq!(got.code, Code::UnsupportedHelper);
        assert!(got.message.contains("bpf_loop"), "{}", got.message);
        assert_eq!(remedy(&got), "bpf_loop needs Linux 5.17");
    }

    #[test]
    fn the_helper_blamed_is_the_one_the_verifier_rejected_never_one_libbpf_rewrote() {
        // Linux 5.4: the program calls bpf_probe_read_kernel (libbpf rewrites
        // it to bpf_probe_read there) and bpf_get_current_task_btf (5.11),
        // which the verifier rejects by number.
        let mut f = failure(
            &["14: (85) call unknown#158", "invalid func unknown#158"],
            &[],
            Some(22),
        );
        f.unsupported_helpers = vec![113, 158];
        let got = load(&f, &program("tracing"));
        assert_eq!(got.code, Code::UnsupportedHelper);
        assert!(
            got.message.starts_with("bpf_get_current_task_btf (#158)"),
            "{}",
            got.message
        );
        assert_eq!(remedy(&got), "bpf_get_current_task_btf needs Linux 5.11");
        // Only a rewritten helper is unsupported and the verifier names
        // nothing: no helper is blamed.
        let mut f = failure(&["some other reason"], &[], Some(22));
        f.unsupported_helpers = vec![113];
        assert_ne!(load(&f, &program("tracing")).code, Code::UnsupportedHelper);
    }

    #[test]
    fn a_helper_the_kernel_has_but_not_for_this_program_type_is_not_given_a_release() {
        // bpf_get_socket_cookie (4.12) from a tracing program on 5.10: the
        // kernel has it, only not for tracing programs (5.12 allowed that).
        let f = failure(&["unknown func bpf_get_socket_cookie#46"], &[], Some(22));
        let p = program("tracing");
        let on = |release: &str| on_kernel(Step::ProgLoad, &f, &p, release, &BTreeMap::new());
        let got = on("5.10.0-46-cloud-amd64");
        assert_eq!(got.code, Code::UnsupportedHelper);
        assert!(
            got.remediation
                .unwrap()
                .starts_with("bpf_get_socket_cookie exists on this kernel (since Linux 4.12) but not for tracing programs"),
        );
        assert_eq!(
            remedy(&on("4.9.0")),
            "bpf_get_socket_cookie needs Linux 4.12"
        );
    }

    #[test]
    fn verifier_text_names_the_helper_when_no_probe_ran() {
        let f = failure(
            &["0: (85) call unknown#181", "invalid func unknown#181"],
            &[],
            Some(22),
        );
        let got = load(&f, &program("tracepoint"));
        assert_eq!(got.code, Code::UnsupportedHelper);
        assert_eq!(remedy(&got), "bpf_loop needs Linux 5.17");
    }

    #[test]
    fn core_relocation_and_rejection_and_unknown() {
        let f = failure(
            &[
                "1: <invalid CO-RE relocation>",
                "failed to resolve CO-RE relocation <byte_off> [5] struct task_struct.__state (0:0 @ offset 0)",
            ],
            &[],
            Some(22),
        );
        assert_eq!(load(&f, &program("tracepoint")).code, Code::CoreRelocation);
        let f = failure(
            &[
                "7: (79) r0 = *(u64 *)(r0 +0)",
                "R0 invalid mem access 'map_value_or_null'",
                "processed 7 insns (limit 1000000)",
            ],
            &[],
            Some(13),
        );
        let got = load(&f, &program("tracepoint"));
        assert_eq!(got.code, Code::VerifierRejected);
        assert_eq!(got.message, "R0 invalid mem access 'map_value_or_null'");
        let f = libbpf_failure("libbpf: something new", 22);
        assert_eq!(load(&f, &program("tracepoint")).code, Code::Unknown);
    }

    #[test]
    fn eperm_without_log_is_permission_not_a_verifier_verdict() {
        let f = libbpf_failure("libbpf: prog 'p': failed to load: -EPERM", 1);
        assert_eq!(load(&f, &program("tracing")).code, Code::Permission);
    }

    #[test]
    fn probes_name_unsupported_map_and_program_types() {
        let f = libbpf_failure(
            "libbpf: map 'events': failed to create: Invalid argument(-22)",
            22,
        );
        let m = MapReport {
            type_supported: Some(false),
            ..map("events", "ringbuf", [4096, 0, 0])
        };
        let got = judge(Step::MapCreate, &f, None, Some(&m), Some(true));
        assert_eq!(got.code, Code::UnsupportedMapType);
        assert_eq!(remedy(&got), "a ringbuf map needs Linux 5.8");
        // A probe that could not tell: the release decides, where it
        // predates the type; never where it has it.
        let unsure = MapReport {
            type_supported: None,
            ..map("per_cgroup", "cgrp_storage", [0, 4, 8])
        };
        let on = |release| {
            classify(&Evidence {
                step: Step::MapCreate,
                failure: &f,
                program: None,
                map: Some(&unsure),
                object_maps: std::slice::from_ref(&unsure),
                kernel_btf: Some(false),
                release: Some(release),
                kernel_config: &BTreeMap::new(),
            })
        };
        let got = on("4.15.0-142-generic");
        assert_eq!(got.code, Code::UnsupportedMapType, "{got:?}");
        assert_eq!(remedy(&got), "a cgrp_storage map needs Linux 6.2");
        assert_ne!(on("6.8.0-1-generic").code, Code::UnsupportedMapType);
        let mut p = program("tracing");
        p.type_supported = Some(false);
        assert_eq!(load(&f, &p).code, Code::UnsupportedProgType);
    }

    #[test]
    fn a_type_probe_refused_on_a_release_that_has_the_type_blames_no_release() {
        // fentry refused with EPERM and no verifier log on 6.18 (lockdown,
        // LSM policy): the probe fails the same way, yet 6.18 has tracing
        // programs since 5.5.
        let f = failure(
            &[],
            &["libbpf: prog 'on_unlink': BPF program load failed: -EPERM"],
            Some(1),
        );
        let mut p = program_in("tracing", "fentry/do_unlinkat");
        p.type_supported = Some(false);
        let config = BTreeMap::new();
        let got = on_kernel(Step::ProgLoad, &f, &p, "6.18.44-fc-v1300", &config);
        assert_eq!(got.code, Code::Permission, "{got:?}");
        let got = on_kernel(Step::ProgLoad, &f, &p, "5.4.0-216-generic", &config);
        assert_eq!(got.code, Code::UnsupportedProgType, "{got:?}");
        assert_eq!(remedy(&got), "a tracing program needs Linux 5.5");
    }

    #[test]
    fn kfunc_and_btf() {
        let mut f = libbpf_failure(
            "libbpf: extern (func ksym) 'bpf_rcu_read_lock': not found in kernel or module BTFs",
            22,
        );
        f.missing_kfuncs = vec!["bpf_rcu_read_lock".into()];
        let got = judge(Step::Object, &f, None, None, Some(true));
        assert_eq!(got.code, Code::MissingKfunc);
        assert!(
            got.remediation
                .unwrap()
                .starts_with("kfunc bpf_rcu_read_lock needs Linux 6.2")
        );
        let got = libbpf_says(
            &[
                "libbpf: failed to find valid kernel BTF",
                "libbpf: Error loading vmlinux BTF: -3",
            ],
            Some(3),
            Some(false),
        );
        assert_eq!(got.code, Code::MissingBtf);
    }

    #[test]
    fn aya_resolving_a_btf_target_names_the_missing_target_or_the_missing_btf() {
        // aya resolves an fentry program's target in the kernel's BTF itself
        // before the load: a function this kernel lacks, or no BTF at all.
        let p = program_in("tracing", "fentry/do_unlinkat");
        let f = failure(&[], &["aya: unknown BTF type `do_unlinkat`"], None);
        let got = judge(Step::ProgLoad, &f, Some(&p), None, Some(true));
        assert_eq!(got.code, Code::MissingAttachTarget, "{got:?}");
        let f = libbpf_failure(
            "aya: resolving `do_unlinkat` in the kernel's BTF (/sys/kernel/btf/vmlinux): error parsing /sys/kernel/btf/vmlinux: No such file or directory (os error 2)",
            2,
        );
        let got = judge(Step::ProgLoad, &f, Some(&p), None, Some(false));
        assert_eq!(got.code, Code::MissingBtf, "{got:?}");
        // A kernel with BTF that aya cannot read is no verdict on the object.
        let got = judge(Step::ProgLoad, &f, Some(&p), None, Some(true));
        assert_eq!(got.code, Code::Unknown, "{got:?}");
    }

    #[test]
    fn aya_without_global_data_maps_before_5_2_names_global_data() {
        // Linux 4.15: aya creates no `.bss` map there and then cannot
        // relocate the variable's load.
        let f = plain_failure(
            "aya: error relocating function: error relocating `on_unlink`: section `6` not found, referenced by symbol `unlinks` #12",
        );
        let on = |release: &str, map_name: &str| {
            let maps = [map(map_name, "array", [1, 4, 8])];
            classify(&Evidence {
                step: Step::Object,
                failure: &f,
                program: None,
                map: None,
                object_maps: &maps,
                kernel_btf: Some(false),
                release: Some(release),
                kernel_config: &BTreeMap::new(),
            })
        };
        let got = on("4.15.0-142-generic", ".bss");
        assert_eq!(got.code, Code::UnsupportedFeature, "{got:?}");
        assert!(remedy(&got).starts_with("global variables (.bss/.data/.rodata) need Linux 5.2"));
        assert_eq!(on("5.4.0-216-generic", ".bss").code, Code::Unknown);
        assert_eq!(on("4.15.0-142-generic", "events").code, Code::Unknown);
    }

    #[test]
    fn a_weak_kfunc_the_kernel_lacks_is_named_before_any_helper() {
        // Linux 5.15: an XDP program calls bpf_dynptr_from_xdp (__weak, 6.4)
        // unguarded and bpf_ringbuf_reserve_dynptr (5.19); the verifier stops
        // at the kfunc, the first instruction it cannot take.
        let mut f = failure(
            &[
                "4: <invalid kfunc call>",
                "kfunc 'bpf_dynptr_from_xdp' is referenced but wasn't resolved",
            ],
            &[],
            Some(22),
        );
        f.unsupported_helpers = vec![198];
        let got = load(&f, &program("xdp"));
        assert_eq!(got.code, Code::MissingKfunc, "{got:?}");
        assert!(
            remedy(&got).starts_with("kfunc bpf_dynptr_from_xdp needs Linux 6.4"),
            "{got:?}"
        );
        assert!(remedy(&got).contains("bpf_ksym_exists(bpf_dynptr_from_xdp)"));
        // A kfunc of no known release is named without one.
        let f = failure(
            &["kfunc 'bpf_new_thing' is referenced but wasn't resolved"],
            &[],
            Some(22),
        );
        let got = load(&f, &program("xdp"));
        assert!(
            remedy(&got).starts_with("kfunc bpf_new_thing is not available on this kernel"),
            "{got:?}"
        );
    }

    #[test]
    fn an_argument_the_hook_lacks_on_this_kernel_is_named_at_load_and_attach() {
        // Debian 11's 5.10: block_rq_insert has one argument, and a program
        // that reads a second (the prototype before 5.11) is refused by the
        // verifier as tp_btf and by the attach as raw_tp.
        let f = failure(
            &[
                "9: (79) r6 = *(u64 *)(r1 +8)",
                "func 'block_rq_insert' doesn't have 2-th argument",
                "invalid bpf_context access off=8 size=8",
            ],
            &[],
            Some(13),
        );
        let got = load(&f, &program_in("tracing", "tp_btf/block_rq_insert"));
        assert_eq!(got.code, Code::VerifierRejected, "{got:?}");
        assert!(
            remedy(&got).starts_with("the program reads an argument"),
            "{got:?}"
        );
        let f = libbpf_failure(
            "libbpf: prog 'block_rq_insert': failed to attach to raw tracepoint 'block_rq_insert': -EINVAL",
            22,
        );
        let raw = program_in("raw_tracepoint", "raw_tp/block_rq_insert");
        let got = judge(Step::Attach, &f, Some(&raw), None, Some(true));
        assert_eq!(got.code, Code::AttachFailed, "{got:?}");
        assert!(
            remedy(&got).starts_with("the program reads more arguments"),
            "{got:?}"
        );
        // EINVAL attaching anything else says nothing of arguments.
        let got = judge(Step::Attach, &f, Some(&program("kprobe")), None, Some(true));
        assert_eq!(remedy(&got), "attaching failed; see the libbpf log");
    }

    #[test]
    fn a_step_the_validator_could_not_prepare_is_no_verdict_whatever_its_errno() {
        let mut f = StepFailure::unprepared(
            "no device of its own to attach to: Operation not supported (os error 95)".into(),
        );
        f.errno = Some(95);
        let got = judge(Step::Attach, &f, Some(&program("xdp")), None, Some(true));
        assert_eq!(got.code, Code::Unknown, "{got:?}");
        assert!(got.message.contains("could not prepare"), "{got:?}");
    }

    #[test]
    fn a_cgroup_lsm_program_refused_at_load_before_6_0_names_its_attach_type() {
        // Debian 11's 5.10 walks no instruction of an lsm_cgroup program.
        let f = failure(
            &[
                "processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
            ],
            &["libbpf: prog 'bind_allowed': BPF program load failed: -EINVAL"],
            Some(22),
        );
        let p = program_in("lsm", "lsm_cgroup/socket_bind");
        let config = BTreeMap::new();
        let got = on_kernel(Step::ProgLoad, &f, &p, "5.10.0-46-cloud-amd64", &config);
        assert_eq!(got.code, Code::UnsupportedAttachType, "{got:?}");
        assert!(remedy(&got).starts_with("cgroup BPF LSM attachments need Linux 6.0"));
        // A walk that refused an instruction is the verifier's verdict.
        let f = failure(
            &[
                "0: (b7) r0 = 1",
                "R1 invalid mem access",
                "processed 1 insns",
            ],
            &[],
            Some(22),
        );
        let got = on_kernel(Step::ProgLoad, &f, &p, "5.10.0-46-cloud-amd64", &config);
        assert_ne!(got.code, Code::UnsupportedAttachType, "{got:?}");
    }

    #[test]
    fn an_freplace_program_without_its_target_is_no_verdict_with_the_way_to_one() {
        let f = libbpf_failure(
            "libbpf: prog 'p': failed to prepare load attributes: -EINVAL",
            22,
        );
        let got = load(&f, &program_in("ext", "freplace/handle"));
        assert_eq!(got.code, Code::Unknown, "{got:?}");
        assert!(remedy(&got).contains("command mode"), "{got:?}");
    }

    #[test]
    fn attach_enoent_without_tracefs_is_configuration_not_a_missing_hook() {
        let mut f = libbpf_failure(
            "libbpf: failed to determine tracepoint 'syscalls/sys_enter_getpid' perf event ID: -ENOENT",
            2,
        );
        f.tracefs = Some(false);
        let got = judge(
            Step::Attach,
            &f,
            Some(&program("tracepoint")),
            None,
            Some(true),
        );
        assert_eq!(got.code, Code::KernelConfig);
        f.tracefs = Some(true);
        let got = judge(
            Step::Attach,
            &f,
            Some(&program("tracepoint")),
            None,
            Some(true),
        );
        assert_eq!(got.code, Code::MissingAttachTarget);
    }

    #[test]
    fn attach_errno() {
        let f = libbpf_failure(
            "libbpf: prog 'p': failed to create kprobe 'nope+0x0' perf event: No such file or directory",
            2,
        );
        let got = judge(Step::Attach, &f, Some(&program("kprobe")), None, Some(true));
        assert_eq!(got.code, Code::MissingAttachTarget);
    }

    #[test]
    fn a_storage_map_declared_with_zero_entries_is_no_loader_contract() {
        // cgrp_storage on Linux 4.15: the type is unknown there, the probe
        // gave no answer, and max_entries 0 is what the type requires.
        let f = libbpf_failure("libbpf: map 'per_cgroup': failed to create: -EINVAL", 22);
        let mut m = map("per_cgroup", "cgrp_storage", [0, 4, 8]);
        let got = judge(Step::MapCreate, &f, None, Some(&m), Some(true));
        assert_eq!(got.code, Code::Unknown, "{got:?}");
        assert!(got.message.contains("per_cgroup"), "{}", got.message);
        m.map_type = "hash".into();
        let got = judge(Step::MapCreate, &f, None, Some(&m), Some(true));
        assert_eq!(got.code, Code::MapContract);
    }

    #[test]
    fn a_struct_ops_type_missing_from_kernel_btf_names_it_and_its_release() {
        // Linux 5.4 and a struct_ops object: libbpf explains, the errno does not.
        let got = libbpf_says(
            &[
                "libbpf: struct_ops init_kern: struct bpf_struct_ops_tcp_congestion_ops is not found in kernel BTF",
                "libbpf: failed to load object 'cc.bpf.o'",
            ],
            Some(3),
            Some(true),
        );
        assert_eq!(got.code, Code::UnsupportedFeature);
        assert!(
            got.message
                .contains("bpf_struct_ops_tcp_congestion_ops is not found in kernel BTF"),
            "{}",
            got.message
        );
        assert_eq!(
            remedy(&got),
            "a struct_ops tcp_congestion_ops needs Linux 5.6"
        );
    }

    #[test]
    fn an_unknown_ld_imm64_with_global_variables_names_global_data_and_5_2() {
        // Linux 4.15 and a program with a global counter (the tc fixture).
        let f = failure(&["unrecognized bpf_ld_imm64 insn"], &[], Some(22));
        let bss = map("tc.bss", "array", [1, 4, 8]);
        let p = program("sched_cls");
        let with_maps = |maps: &[MapReport]| {
            classify(&Evidence {
                step: Step::ProgLoad,
                failure: &f,
                program: Some(&p),
                map: None,
                object_maps: maps,
                kernel_btf: Some(false),
                release: None,
                kernel_config: &BTreeMap::new(),
            })
        };
        let got = with_maps(std::slice::from_ref(&bss));
        assert_eq!(got.code, Code::UnsupportedFeature);
        assert!(got.remediation.unwrap().starts_with("global variables"));
        let got = with_maps(&[]);
        assert_eq!(got.code, Code::UnsupportedFeature);
        assert!(got.remediation.unwrap().contains("__ksym"));
    }

    #[test]
    fn an_attach_type_newer_than_the_kernel_names_it_only_where_the_release_is_older() {
        let f = libbpf_failure("libbpf: prog 'p': failed to attach: Invalid argument", 22);
        let p = program_in("kprobe", "kprobe.multi/do_unlinkat");
        let on = |release: &str, fprobe: &str| {
            let config = BTreeMap::from([("CONFIG_FPROBE".to_string(), fprobe.to_string())]);
            on_kernel(Step::Attach, &f, &p, release, &config)
        };
        let got = on("5.10.0-46-cloud-amd64", "n");
        assert_eq!(
            got.code,
            Code::KernelConfig,
            "the config names the cause first"
        );
        let got = on("5.10.0-46-cloud-amd64", "y");
        assert_eq!(got.code, Code::UnsupportedAttachType);
        assert!(
            got.remediation
                .unwrap()
                .starts_with("kprobe.multi links need Linux 5.18 (this kernel is 5.10.0-46")
        );
        // A kernel that has them refused for another reason: no release blamed.
        assert_eq!(
            on("6.12.117+deb13-cloud-amd64", "y").code,
            Code::AttachFailed
        );
    }

    #[test]
    fn a_netkit_link_refused_names_the_option_or_the_release_that_lacks_it() {
        let f = libbpf_failure("libbpf: prog 'p': failed to attach to netkit: -EINVAL", 22);
        let p = program_in("sched_cls", "netkit/primary");
        let on = |release: &str, netkit: Option<&str>| {
            let config = netkit
                .map(|v| BTreeMap::from([("CONFIG_NETKIT".to_string(), v.to_string())]))
                .unwrap_or_default();
            on_kernel(Step::Attach, &f, &p, release, &config)
        };
        let got = on("6.18.44", Some("n"));
        assert_eq!(got.code, Code::KernelConfig, "{got:?}");
        assert!(got.remediation.unwrap().contains("tcx or tc"));
        // 6.1 has no such option at all: its release is the cause.
        let got = on("6.1.0-56-cloud-amd64", None);
        assert_eq!(got.code, Code::UnsupportedAttachType, "{got:?}");
        assert!(
            got.remediation
                .unwrap()
                .contains("netkit links need Linux 6.7")
        );
        assert_eq!(
            on("6.12.117+deb13-cloud-amd64", Some("y")).code,
            Code::AttachFailed
        );
    }

    #[test]
    fn a_load_refused_before_the_verifier_for_a_too_new_attach_type_names_it() {
        let p = program_in("kprobe", "kprobe.multi/vfs_read");
        let no_config = BTreeMap::new();
        for (errno, release) in [(22, "4.15.0-142-generic"), (7, "4.4.0-210-generic")] {
            let f = libbpf_failure(
                "libbpf: prog 'on_vfs_read': BPF program load failed: -EINVAL",
                errno,
            );
            let got = on_kernel(Step::ProgLoad, &f, &p, release, &no_config);
            assert_eq!(got.code, Code::UnsupportedAttachType, "{release}: {got:?}");
            assert!(got.remediation.unwrap().contains("need Linux 5.18"));
        }
        // The verifier spoke: its words decide, not the release.
        let f = failure(
            &["R1 invalid mem access 'scalar'"],
            &["libbpf: prog 'on_vfs_read': BPF program load failed: -EACCES"],
            Some(13),
        );
        let got = on_kernel(Step::ProgLoad, &f, &p, "4.15.0-142-generic", &no_config);
        assert_ne!(got.code, Code::UnsupportedAttachType, "{got:?}");
    }

    #[test]
    fn a_struct_ops_link_is_blamed_only_when_the_object_loads_without_it() {
        let f = libbpf_failure("libbpf: map 'cc': failed to create: -EINVAL", 22);
        let mut m = MapReport {
            flags: crate::wire::BPF_F_LINK,
            loads_without_link: Some(true),
            ..map("cc", "struct_ops", [1, 4, 64])
        };
        let got = judge(Step::MapCreate, &f, None, Some(&m), Some(true));
        assert_eq!(got.code, Code::UnsupportedFeature);
        assert!(
            got.remediation
                .unwrap()
                .starts_with("struct_ops links need Linux 6.4")
        );
        // Refused without the link too: something else is wrong, and no
        // release is named.
        m.loads_without_link = Some(false);
        let got = judge(Step::MapCreate, &f, None, Some(&m), Some(true));
        assert_eq!(got.code, Code::Unknown, "{got:?}");
    }

    #[test]
    fn a_struct_ops_type_the_kernel_will_not_register_is_not_blamed_on_a_link_type() {
        let f = failure(&[], &[], Some(95));
        let p = program_in("struct_ops", "struct_ops/test_1");
        let got = judge(Step::Attach, &f, Some(&p), None, Some(true));
        assert_eq!(got.code, Code::UnsupportedAttachType);
        assert!(got.remediation.unwrap().contains("will not register"));
        let got = judge(Step::Attach, &f, Some(&program("kprobe")), None, Some(true));
        assert!(got.remediation.unwrap().contains("kprobe.multi"));
    }

    #[test]
    fn a_link_with_an_older_way_to_attach_is_named_at_attach_and_never_at_load() {
        // XDP reaches older kernels through netlink, cgroup programs through
        // BPF_PROG_ATTACH: (prog type, section, the link's floor and the
        // older way, a kernel below it, one above).
        for (prog_type, section, says, older, newer) in [
            (
                "xdp",
                "xdp",
                [
                    "XDP attachments through a BPF link need Linux 5.9",
                    "bpf_xdp_attach",
                ],
                "5.4.0-216-generic",
                "6.1.0-56-cloud-amd64",
            ),
            (
                "cgroup_skb",
                "cgroup_skb/egress",
                [
                    "cgroup attachments through a BPF link need Linux 5.7",
                    "bpf_prog_attach",
                ],
                "4.15.0-142-generic",
                "5.10.0-46-cloud-amd64",
            ),
        ] {
            let f = libbpf_failure("libbpf: prog 'p': failed to attach: -EINVAL", 22);
            let p = program_in(prog_type, section);
            let config = BTreeMap::new();
            let got = on_kernel(Step::Attach, &f, &p, older, &config);
            assert_eq!(got.code, Code::UnsupportedAttachType, "{got:?}");
            let fix = got.remediation.unwrap();
            assert!(says.iter().all(|s| fix.contains(s)), "{fix}");
            let got = on_kernel(Step::Attach, &f, &p, newer, &config);
            assert_eq!(got.code, Code::AttachFailed, "{got:?}");
            let got = on_kernel(Step::ProgLoad, &f, &p, older, &config);
            assert_ne!(got.code, Code::UnsupportedAttachType, "{got:?}");
        }
    }

    #[test]
    fn a_tcx_link_before_6_6_names_the_tc_filter_way_for_tcx_sections_and_their_aliases() {
        let f = libbpf_failure("libbpf: prog 'p': failed to attach to tcx: -EINVAL", 22);
        let config = BTreeMap::new();
        for section in ["tcx/ingress", "tc/egress"] {
            let p = program_in("sched_cls", section);
            let got = on_kernel(Step::Attach, &f, &p, "6.1.0-56-cloud-amd64", &config);
            assert_eq!(got.code, Code::UnsupportedAttachType, "{got:?}");
            let fix = got.remediation.unwrap();
            assert!(fix.contains("tcx links need Linux 6.6"), "{fix}");
            assert!(fix.contains("bpf_tc_attach"), "{fix}");
        }
        // Plain `tc` is a tc filter already: no tcx floor.
        let p = program_in("sched_cls", "tc");
        let got = on_kernel(Step::Attach, &f, &p, "6.1.0-56-cloud-amd64", &config);
        assert_eq!(got.code, Code::AttachFailed, "{got:?}");
    }

    #[test]
    fn aya_setting_an_expected_attach_type_before_4_17_is_named() {
        let f = StepFailure {
            errno: Some(22),
            error: "aya: the BPF_PROG_LOAD syscall returned Invalid argument (os error 22). Verifier output: ".into(),
            ..StepFailure::default()
        };
        let config = BTreeMap::new();
        let xdp = program_in("xdp", "xdp");
        let got = on_kernel(Step::ProgLoad, &f, &xdp, "4.15.0-142-generic", &config);
        assert_eq!(got.code, Code::UnsupportedFeature, "{got:?}");
        assert!(got.remediation.unwrap().contains("needs Linux 4.17"));
        // Newer kernels know the field; libbpf's words are not aya's.
        let got = on_kernel(Step::ProgLoad, &f, &xdp, "5.4.0-216-generic", &config);
        assert_ne!(got.code, Code::UnsupportedFeature, "{got:?}");
        let libbpf = StepFailure {
            error: "Invalid argument (os error 22)".into(),
            ..f.clone()
        };
        let got = on_kernel(Step::ProgLoad, &libbpf, &xdp, "4.15.0-142-generic", &config);
        assert_ne!(got.code, Code::UnsupportedFeature, "{got:?}");
        // A cgroup_skb program without a direction gets none from aya.
        let bare = program_in("cgroup_skb", "cgroup/skb");
        let got = on_kernel(Step::ProgLoad, &f, &bare, "4.15.0-142-generic", &config);
        assert_ne!(got.code, Code::UnsupportedFeature, "{got:?}");
    }

    #[test]
    fn every_rule_is_named_once() {
        let mut names: Vec<&str> = RULES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len);
    }

    #[test]
    fn every_text_rule_is_placed_and_every_placed_one_exists() {
        for name in TEXT_RULES.keys() {
            assert!(
                RULES.iter().any(|(n, _)| n == name),
                "{name} is not in RULES"
            );
        }
        // A text rule placed under a name the data lacks would panic here.
        let f = failure(&[], &[], None);
        let p = program("tracepoint");
        let e = Evidence {
            step: Step::ProgLoad,
            failure: &f,
            program: Some(&p),
            map: None,
            object_maps: &[],
            kernel_btf: None,
            release: None,
            kernel_config: &BTreeMap::new(),
        };
        for (_, rule) in RULES {
            rule(&e);
        }
    }
}
