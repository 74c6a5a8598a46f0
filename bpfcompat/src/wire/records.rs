//! Guest to host: the records an agent (or a `#[kernel_test]` binary) writes.
//!
//! One record per line on the guest's second serial port (`/dev/ttyS1`), each
//! line `BPFCOMPAT<version> <json>`. The prefix lets the host tell records
//! from anything else that lands on the port; a line with the prefix that
//! does not parse is kept as evidence, never silently dropped. The same
//! [`ObjectReport`] is produced by the host pre-load gate, so a guest cell and
//! a host check are judged by one classifier.

use serde::{Deserialize, Serialize};

/// Prefix of every record line; the digit is [`super::WIRE_VERSION`].
pub const RECORD_PREFIX: &str = "BPFCOMPAT2 ";

/// One line on the result port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The agent runs: everything before this line is kernel boot.
    Hello {
        /// `uname -r` of the guest.
        kernel_release: String,
        /// Whether `/sys/kernel/btf/vmlinux` exists.
        kernel_btf: bool,
        /// The active security modules (`/sys/kernel/security/lsm`).
        #[serde(default)]
        lsm: Option<String>,
        /// Milliseconds since the guest kernel booted, when the agent started.
        uptime_ms: u64,
        /// The modules shipped for this kernel that are not loaded (their
        /// load failed: garbage, or built for another kernel).
        #[serde(default)]
        modules_not_loaded: Vec<String>,
    },
    /// A snapshot guest is booted and waits for its job on the job disk:
    /// the host saves the machine now.
    AwaitingJob {
        /// Milliseconds since the guest kernel booted.
        uptime_ms: u64,
    },
    /// The verdict on one object of the job.
    Object(Box<ObjectReport>),
    /// What one of the user's commands did.
    Command(Box<CommandReport>),
    /// The outcome of one `#[kernel_test]` body.
    Test {
        /// The test's name.
        name: String,
        /// Whether it returned `Ok`/`()` without panicking.
        passed: bool,
        /// The error or panic message.
        message: Option<String>,
        /// How long it ran, in milliseconds.
        duration_ms: u64,
        /// Its `bpf()` and probe calls, as the init traced them.
        #[serde(default)]
        trace: Option<Box<super::trace::Trace>>,
    },
    /// The agent finished the whole job and powers off next.
    Done {
        /// Milliseconds since the guest kernel booted.
        uptime_ms: u64,
    },
    /// The agent could not do its work (a setup step failed).
    AgentError {
        /// What failed, in words.
        message: String,
    },
    /// The guest can never read a job disk (its kernel has no virtio block
    /// driver): its machine cannot be saved for warm guests.
    NoJobDisk {
        /// The device that never appeared.
        device: String,
    },
}

impl Record {
    /// Encodes the record as one line, without the trailing newline.
    pub fn to_line(&self) -> String {
        format!(
            "{RECORD_PREFIX}{}",
            serde_json::to_string(self).expect("records always serialize")
        )
    }
}

/// A result-port line with the record prefix that did not parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MalformedRecord {
    /// The raw line.
    pub line: String,
    /// Why it did not parse.
    pub error: String,
}

/// What the validator found for one object on one kernel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ObjectReport {
    /// The object's name in the job.
    pub object: String,
    /// Set when the object as a whole could not be opened or loaded and no
    /// single program or map is to blame (an unresolved extern, missing BTF).
    pub object_error: Option<StepFailure>,
    /// Every map of the object.
    pub maps: Vec<MapReport>,
    /// Every program of the object.
    pub programs: Vec<ProgramReport>,
    /// Set when the validator itself did not finish (hung or crashed).
    pub fault: Option<Fault>,
    /// Per group of alternative programs, the one chosen on this kernel.
    #[serde(default)]
    pub variants: Vec<VariantChoice>,
    /// What the validator assumed where the object leaves a value to its
    /// loader (an unsized map): notes, not failures.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// How long validation took in the agent, in milliseconds.
    pub duration_ms: u64,
}

/// What a user's command did in the guest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommandReport {
    /// The command's name in the job.
    pub name: String,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it ran past its limit and was killed.
    pub timed_out: bool,
    /// It could not be started: why.
    pub spawn_error: Option<String>,
    /// The end of what it wrote, standard output and error as one stream in
    /// the order written (at most [`OUTPUT_KEEP`] bytes; not UTF-8 shown
    /// lossily).
    #[serde(default)]
    pub output: String,
    /// How many bytes it wrote in all (more than `output` holds when the
    /// beginning was cut).
    #[serde(default)]
    pub output_bytes: u64,
    /// What ready meant for it, when it runs until stopped.
    #[serde(default)]
    pub readiness: Option<super::Ready>,
    /// When it became ready.
    #[serde(default)]
    pub ready: Option<ReadyAt>,
    /// How it ended once ready and sent SIGINT.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// The workload run once it was ready, and how it ended.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Fire mode: how often each program it loaded ran once it was ready.
    #[serde(default)]
    pub runs: Option<CommandRuns>,
    /// Why it ran beside the agent instead of in namespaces of its own.
    #[serde(default)]
    pub not_isolated: Option<String>,
    /// Its `bpf()` and probe calls, as the agent traced them.
    #[serde(default)]
    pub trace: Option<Box<super::trace::Trace>>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// Fire mode in command mode: the runs of the programs a loader loaded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandRuns {
    /// Counted after the workload, before SIGINT.
    Counted {
        /// Each program the loader had loaded: name, BPF program type
        /// number, runs.
        programs: Vec<(String, u32, u64)>,
    },
    /// Not countable on this kernel.
    Unmeasured {
        /// Why.
        reason: String,
    },
}

/// The most of a command's output a report keeps: its last 64 KiB.
pub const OUTPUT_KEEP: usize = 64 << 10;

/// When a command became ready.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReadyAt {
    /// Milliseconds after it started.
    pub after_ms: u64,
    /// The line that matched (for a ready line), cut to 4 KiB.
    pub line: Option<String>,
}

/// How a ready command ended after SIGINT.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// It exited, or died of that SIGINT, within the grace period.
    Clean,
    /// It had no handler for SIGINT, whose default action ends a process:
    /// it was ended so (in its PID namespace, where it is PID 1, the kernel
    /// ignores a signal it does not handle).
    DefaultAction,
    /// It was still running when the grace period ended, and was killed.
    GraceExpired,
}

/// Which program of a group of alternatives a kernel got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantChoice {
    /// The group, in order of preference.
    pub candidates: Vec<String>,
    /// The first that loaded and attached; `None` when none did.
    pub chosen: Option<String>,
    /// Whether the group was inferred (programs on one hook by different
    /// mechanisms) rather than declared as `variants`.
    #[serde(default)]
    pub inferred: bool,
}

/// The validator child of one object did not finish normally.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// It ran past the job's per-object timeout and was killed.
    Timeout {
        /// The limit, in seconds.
        after_secs: u64,
    },
    /// It died or printed no report.
    Crashed {
        /// Exit status or signal, and what it printed last.
        detail: String,
    },
    /// The project's configuration does not fit the object (a fix-up names
    /// a map it lacks, a trigger cannot run): the tool's input is wrong, not
    /// the kernel.
    Configuration {
        /// What does not fit.
        message: String,
    },
}

/// One map of an object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MapReport {
    /// Map name as libbpf knows it (`.rodata` sections included).
    pub name: String,
    /// libbpf's name of the map type, e.g. `ringbuf`.
    pub map_type: String,
    /// The kernel's answer to a map-type probe, where one was made.
    pub type_supported: Option<bool>,
    /// `max_entries`, key and value size as the object declares them
    /// (after fix-ups); zero means a loader must set them at run time.
    #[serde(default)]
    pub declared: [u32; 3],
    /// `map_flags` as the object declares them (libbpf sets `BPF_F_LINK`
    /// for a `.struct_ops.link` map).
    #[serde(default)]
    pub flags: u32,
    /// For a struct_ops map with `BPF_F_LINK` that failed: whether the same
    /// object loads with the flag cleared (the kernel has struct_ops but not
    /// struct_ops links).
    #[serde(default)]
    pub loads_without_link: Option<bool>,
    /// For a global-data map the object asks to be mmap-able (a skeleton
    /// reads its variables through mmap): whether the loaded map is. libbpf
    /// drops the flag silently on kernels that cannot mmap arrays.
    #[serde(default)]
    pub mmapable: Option<bool>,
    /// Whether the kernel created the map.
    pub create: Outcome,
}

/// `BPF_F_LINK` in `map_flags`: a struct_ops map attached through a link.
pub const BPF_F_LINK: u32 = 1 << 13;
/// `BPF_F_MMAPABLE` in `map_flags`: an array map user space can mmap.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

impl MapReport {
    /// A struct_ops map that registers through a BPF link (`.struct_ops.link`).
    pub fn is_struct_ops_link(&self) -> bool {
        self.map_type == "struct_ops" && self.flags & BPF_F_LINK != 0
    }
}

/// One program of an object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramReport {
    /// Program (function) name.
    pub name: String,
    /// ELF section, which tells libbpf the program and attach type.
    pub section: String,
    /// libbpf's name of the program type, e.g. `tracing`.
    pub prog_type: String,
    /// The kernel's answer to a program-type probe, where one was made.
    pub type_supported: Option<bool>,
    /// IDs of the BPF helpers the program calls (from its instructions).
    pub helpers: Vec<u32>,
    /// Verifier load.
    pub load: Outcome,
    /// Attach to the hook its section names.
    pub attach: Outcome,
    /// Fire mode: whether it ran while the trigger ran.
    #[serde(default)]
    pub fire: Option<Fire>,
    /// Declared optional: the loader may go without it, so its failure is
    /// shown, not counted.
    #[serde(default)]
    pub optional: bool,
    /// The verifier's statistics, when it accepted the program and the
    /// kernel has a statistics log level.
    #[serde(default)]
    pub complexity: Option<super::Complexity>,
    /// Instructions of the program's own function as compiled (before
    /// libbpf adds the functions it calls): old kernels refuse more than
    /// 4096 without a log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insn_count: Option<u32>,
    /// The function the program was loaded against in place of its
    /// section's placeholder target (see `ProgramFixup::placeholder`): a
    /// refusal may be the stand-in's, not the real target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<String>,
}

/// Fire mode's verdict on one attached program.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Fire {
    /// It ran this many times.
    Fired {
        /// Run count during the trigger.
        runs: u64,
    },
    /// It ran zero times while the trigger ran.
    NotFired {
        /// The trigger that was used.
        trigger: String,
    },
    /// No built-in trigger is known for its hook and none was given.
    UnknownTrigger {
        /// Its section.
        section: String,
    },
    /// Its runs could not be counted (a kernel without BPF run statistics).
    Unmeasured {
        /// Why.
        reason: String,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The step succeeded.
    Ok,
    /// The step failed; the evidence is attached.
    Failed(StepFailure),
    /// The step was not attempted.
    Skipped {
        /// Why not, in words.
        reason: String,
    },
}

impl Outcome {
    /// The failure, if this outcome is one.
    pub fn failure(&self) -> Option<&StepFailure> {
        match self {
            Outcome::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// The kernel's and libbpf's own words about a failed step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepFailure {
    /// Positive errno, when the failing call returned one.
    pub errno: Option<i32>,
    /// The error as libbpf-rs rendered it.
    pub error: String,
    /// libbpf's warnings during the step (bounded, oldest dropped).
    pub libbpf_log: Vec<String>,
    /// The verifier log of the failing program (bounded tail).
    pub verifier_log: Vec<String>,
    /// Names of kernel functions (kfuncs) libbpf could not resolve.
    pub missing_kfuncs: Vec<String>,
    /// Helpers the program calls that the kernel's helper probe says this
    /// program type cannot use (probed only after a failed load).
    pub unsupported_helpers: Vec<u32>,
    /// For attach failures: whether tracefs (tracepoints, legacy kprobes and
    /// uprobes go through it) was mounted.
    pub tracefs: Option<bool>,
    /// Why the validator itself could not prepare the step (make the device
    /// or cgroup a program attaches to). The kernel was not asked: there is
    /// no verdict on the program.
    #[serde(default)]
    pub unprepared: Option<String>,
}

impl StepFailure {
    /// A step the validator could not prepare, for `why`.
    pub fn unprepared(why: String) -> StepFailure {
        StepFailure {
            error: why.clone(),
            unprepared: Some(why),
            ..StepFailure::default()
        }
    }
}

/// Keeps at most `max` lines, dropping the oldest: the end of a verifier log
/// says why it gave up.
pub fn tail(lines: Vec<String>, max: usize) -> Vec<String> {
    let skip = lines.len().saturating_sub(max);
    lines.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_through_a_noisy_line_and_a_torn_one_is_kept() {
        use super::super::channel::{Line, Signer, Verifier};
        let record = Record::Hello {
            kernel_release: "6.1.0-9-cloud-amd64".into(),
            kernel_btf: true,
            lsm: None,
            uptime_ms: 1234,
            modules_not_loaded: Vec::new(),
        };
        let mut host = Verifier::default();
        let line = format!("garbage{}\r\n", Signer::default().line(&record));
        assert_eq!(host.accept(&line), Line::Record(record));
        assert_eq!(host.accept("[    0.000000] Linux version 6.1"), Line::Other);
        let torn = "BPFCOMPAT2 - {\"record\":\"hel";
        assert!(matches!(host.accept(torn), Line::Malformed(m) if m.line == torn));
    }

    #[test]
    fn tail_keeps_the_end() {
        let lines: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        assert_eq!(tail(lines, 2), vec!["3", "4"]);
    }
}
