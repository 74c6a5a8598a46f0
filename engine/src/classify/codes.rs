//! Failure codes.

use serde::{Deserialize, Serialize};

/// Why a cell failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// The kernel has no BTF and the object needs it.
    MissingBtf,
    /// A CO-RE relocation found no matching field or type.
    CoreRelocation,
    /// A kfunc the object calls is not in the kernel.
    MissingKfunc,
    /// The function, tracepoint or BTF type a program attaches to is missing.
    MissingAttachTarget,
    /// The kernel does not know a map type the object uses.
    UnsupportedMapType,
    /// The kernel does not know a program type the object uses.
    UnsupportedProgType,
    /// The kernel cannot attach this kind of program this way.
    UnsupportedAttachType,
    /// A helper the program calls is missing for its program type.
    UnsupportedHelper,
    /// Another kernel feature is missing (global data, bounded loops, …).
    UnsupportedFeature,
    /// The kernel was built without something the object needs.
    KernelConfig,
    /// The verifier rejected the program.
    VerifierRejected,
    /// The verifier gave up on size or complexity.
    VerifierLimit,
    /// A GPL-only helper from a non-GPL program.
    GplOnly,
    /// Not allowed (missing capability, lockdown, an LSM).
    Permission,
    /// A map the real loader sizes at run time was loaded as compiled.
    MapContract,
    /// Attaching failed for another reason.
    AttachFailed,
    /// Attached but never ran (fire mode).
    NotFired,
    /// The user's command failed (command mode).
    CommandFailed,
    /// The verifier's work on a program grew past `--max-complexity-growth`
    /// since the baseline (the kernel still accepts it).
    ComplexityRegression,
    /// A program uses more of the verifier's limit than `--min-headroom`
    /// leaves (the kernel still accepts it).
    ComplexityHeadroom,
    /// The validator or guest ran past its limit.
    Timeout,
    /// The kernel panicked.
    KernelPanic,
    /// bpfcompat itself could not produce a verdict.
    Infra,
    /// The run was stopped (Ctrl-C, SIGTERM) before this cell was decided.
    Interrupted,
    /// No rule explains the failure; the raw evidence is attached.
    Unknown,
}

impl Code {
    /// The code as written in reports, e.g. `UNSUPPORTED_HELPER`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            MissingBtf => "MISSING_BTF",
            CoreRelocation => "CORE_RELOCATION",
            MissingKfunc => "MISSING_KFUNC",
            MissingAttachTarget => "MISSING_ATTACH_TARGET",
            UnsupportedMapType => "UNSUPPORTED_MAP_TYPE",
            UnsupportedProgType => "UNSUPPORTED_PROG_TYPE",
            UnsupportedAttachType => "UNSUPPORTED_ATTACH_TYPE",
            UnsupportedHelper => "UNSUPPORTED_HELPER",
            UnsupportedFeature => "UNSUPPORTED_FEATURE",
            KernelConfig => "KERNEL_CONFIG",
            VerifierRejected => "VERIFIER_REJECTED",
            VerifierLimit => "VERIFIER_LIMIT",
            GplOnly => "GPL_ONLY",
            Permission => "PERMISSION",
            MapContract => "MAP_CONTRACT",
            AttachFailed => "ATTACH_FAILED",
            NotFired => "NOT_FIRED",
            CommandFailed => "COMMAND_FAILED",
            ComplexityRegression => "COMPLEXITY_REGRESSION",
            ComplexityHeadroom => "COMPLEXITY_HEADROOM",
            Timeout => "TIMEOUT",
            KernelPanic => "KERNEL_PANIC",
            Infra => "INFRA",
            Interrupted => "INTERRUPTED",
            Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spelling_matches_as_str() {
        for c in [
            Code::MissingBtf,
            Code::UnsupportedHelper,
            Code::KernelPanic,
            Code::GplOnly,
            Code::ComplexityRegression,
        ] {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}

#[cfg(test)]
mod expectable_tests {
    use super::Code;

    /// The codes a `#[kernel_test]`'s expect_fail may name are codes.
    #[test]
    fn every_code_a_kernel_test_may_expect_is_one_the_classifier_gives() {
        for name in bpfcompat::harness::CODES {
            let code: Code =
                serde_json::from_value((*name).into()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(code.as_str(), *name);
        }
    }
}
