//! What a real loader changes in an object before loading it: the fix-ups a
//! project declares and the validator replays, part of every job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a real loader does to an object before loading it, replayed by the
/// validator so that the verdict is about the object as it is really loaded.
/// All fields are optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fixups {
    /// Per map, by name.
    #[serde(default)]
    pub maps: BTreeMap<String, MapFixup>,
    /// Per program, by name.
    #[serde(default)]
    pub programs: BTreeMap<String, ProgramFixup>,
    /// Initial values of global variables (`const volatile` in `.rodata`,
    /// `.bss`, `.data`) by name: integers or booleans.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Groups of alternative programs: per kernel, the first of each group
    /// that loads and attaches is chosen and the rest are not counted.
    #[serde(default)]
    pub variants: Vec<Vec<String>>,
    /// Whether the loader reads global variables through a skeleton's
    /// mmap of their maps (default: yes, as libbpf and libbpf-cargo
    /// skeletons do); `false` for loaders that do not.
    #[serde(default)]
    pub skeleton: Option<bool>,
    /// Whose loading judges the object: libbpf's (the default) or aya's.
    #[serde(default)]
    pub validator: Option<Validator>,
    /// Fix-ups that hold on some kernels only (by profile or release), laid
    /// over the rest in order: what a loader does differently per kernel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<KernelFixups>,
}

/// Fix-ups for the kernels a profile list or a release range selects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KernelFixups {
    /// Profile names (`debian-11-5.10`).
    #[serde(default)]
    pub kernels: Vec<String>,
    /// Releases: comparisons on major.minor, all of which must hold
    /// (`"<5.8"`, `">=5.4, <5.10"`).
    pub release: Option<ReleaseRange>,
    /// Per map, by name; set fields replace the object's.
    #[serde(default)]
    pub maps: BTreeMap<String, MapFixup>,
    /// Per program, by name; set fields replace the object's.
    #[serde(default)]
    pub programs: BTreeMap<String, ProgramFixup>,
    /// Initial values of global variables, replacing the object's.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
}

impl KernelFixups {
    /// Whether this holds on the kernel `profile` whose release is
    /// `release` (`uname -r`): a listed profile, or a release in range
    /// (both, where both are given).
    pub fn holds(&self, profile: &str, release: &str) -> bool {
        let listed = self.kernels.is_empty() || self.kernels.iter().any(|k| k == profile);
        let in_range = self.release.as_ref().is_none_or(|r| r.contains(release));
        listed && in_range && (!self.kernels.is_empty() || self.release.is_some())
    }
}

impl Fixups {
    /// The fix-ups on the kernel `profile` of `release`: the object's, with
    /// each `on` entry that holds there laid over them, in order.
    pub fn for_kernel(&self, profile: &str, release: &str) -> Fixups {
        let mut out = Fixups {
            on: Vec::new(),
            ..self.clone()
        };
        for k in self.on.iter().filter(|k| k.holds(profile, release)) {
            for (name, m) in &k.maps {
                let base = out.maps.remove(name).unwrap_or_default();
                out.maps.insert(name.clone(), m.over(base));
            }
            for (name, p) in &k.programs {
                let base = out.programs.remove(name).unwrap_or_default();
                out.programs.insert(name.clone(), p.over(base));
            }
            out.variables
                .extend(k.variables.iter().map(|(n, v)| (n.clone(), v.clone())));
        }
        out
    }
}

impl MapFixup {
    /// This map fix-up's set fields over `base`'s.
    fn over(&self, base: MapFixup) -> MapFixup {
        MapFixup {
            max_entries: self.max_entries.or(base.max_entries),
            key_size: self.key_size.or(base.key_size),
            value_size: self.value_size.or(base.value_size),
            map_type: self.map_type.clone().or(base.map_type),
            fallback_type: self.fallback_type.clone().or(base.fallback_type),
            autocreate: self.autocreate.or(base.autocreate),
            inner: self.inner.clone().or(base.inner),
        }
    }
}

impl ProgramFixup {
    /// This program fix-up's set fields over `base`'s.
    fn over(&self, base: ProgramFixup) -> ProgramFixup {
        ProgramFixup {
            autoload: self.autoload.or(base.autoload),
            optional: self.optional.or(base.optional),
            prog_type: self.prog_type.clone().or(base.prog_type),
            attach_target: self.attach_target.clone().or(base.attach_target),
            attach_module: self.attach_module.clone().or(base.attach_module),
            placeholder: self.placeholder.or(base.placeholder),
        }
    }
}

/// Comparisons on a kernel's major.minor, all of which must hold:
/// `"<5.8"`, `">=5.4, <5.10"`, `"=6.1"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRange {
    text: String,
    bounds: Vec<(Cmp, (u32, u32))>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// Why a release range does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    /// A part without `<`, `<=`, `>`, `>=` or `=`.
    NoComparison(String),
    /// A bound that is no major.minor release.
    NoRelease(String),
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeError::NoComparison(part) => write!(
                f,
                "`{part}` is no comparison: write `<5.8`, `>=5.4, <5.10` or `=6.1`"
            ),
            RangeError::NoRelease(v) => {
                write!(f, "`{v}` is no release: write major.minor, e.g. 5.8")
            }
        }
    }
}

impl std::error::Error for RangeError {}

impl ReleaseRange {
    /// Parses a range; the error says what is wrong.
    pub fn parse(text: &str) -> Result<ReleaseRange, RangeError> {
        let mut bounds = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (cmp, version) = [
                ("<=", Cmp::Le),
                (">=", Cmp::Ge),
                ("<", Cmp::Lt),
                (">", Cmp::Gt),
                ("=", Cmp::Eq),
            ]
            .iter()
            .find_map(|(p, c)| part.strip_prefix(p).map(|v| (*c, v.trim())))
            .ok_or_else(|| RangeError::NoComparison(part.to_string()))?;
            let v =
                major_minor(version).ok_or_else(|| RangeError::NoRelease(version.to_string()))?;
            bounds.push((cmp, v));
        }
        Ok(ReleaseRange {
            text: text.to_string(),
            bounds,
        })
    }

    /// Whether `release` (`uname -r`, e.g. `5.10.0-46-cloud-amd64`) is in
    /// range; never for a release that does not parse.
    pub fn contains(&self, release: &str) -> bool {
        let Some(v) = major_minor(release) else {
            return false;
        };
        self.bounds.iter().all(|(c, b)| match c {
            Cmp::Lt => v < *b,
            Cmp::Le => v <= *b,
            Cmp::Gt => v > *b,
            Cmp::Ge => v >= *b,
            Cmp::Eq => v == *b,
        })
    }
}

/// The major and minor numbers at the start of a release.
fn major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Serialize for ReleaseRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ReleaseRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ReleaseRange, D::Error> {
        let text = String::deserialize(d)?;
        ReleaseRange::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The loader whose behaviour the validator reproduces.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// libbpf 1.x, as libbpf-rs, libbpf-cargo skeletons and C tools load.
    Libbpf,
    /// aya, as aya projects load (legacy `maps` sections included).
    Aya,
}

/// Changes to one map before load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapFixup {
    /// `max_entries`: a number or `"cpus"` (the number of possible CPUs).
    pub max_entries: Option<Count>,
    /// Key size in bytes.
    pub key_size: Option<u32>,
    /// Value size in bytes.
    pub value_size: Option<u32>,
    /// Another map type, by libbpf's name (e.g. `perf_event_array`).
    #[serde(rename = "type")]
    pub map_type: Option<String>,
    /// The type the loader falls back to where the kernel lacks the map's
    /// own (`perf_event_array` for a `ringbuf` before 5.8), by libbpf's name.
    pub fallback_type: Option<String>,
    /// `false` leaves the map out, as `bpf_map__set_autocreate(false)` does.
    pub autocreate: Option<bool>,
    /// The inner map prototype of a map-in-map.
    pub inner: Option<InnerMap>,
}

/// An inner map prototype for `array_of_maps` / `hash_of_maps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InnerMap {
    /// libbpf's name of the inner map type.
    #[serde(rename = "type")]
    pub map_type: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Entries.
    pub max_entries: u32,
}

/// Changes to one program before load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProgramFixup {
    /// `false` leaves the program out.
    pub autoload: Option<bool>,
    /// `true`: the loader may go without this program (it skips it where it
    /// fails); its failure is shown, not counted.
    pub optional: Option<bool>,
    /// Another program type, by libbpf's name (e.g. `kprobe`).
    #[serde(rename = "type")]
    pub prog_type: Option<String>,
    /// Another attach target: the kernel function for fentry/fexit/kprobe,
    /// `category/name` for a tracepoint. A list is the loader's order of
    /// preference ("try A, else B"): per kernel the first that the kernel
    /// has is taken.
    pub attach_target: Option<AttachTargets>,
    /// The kernel module of `attach_target`, when it lives in one.
    pub attach_module: Option<String>,
    /// `true`: the section's target is a placeholder the loader replaces at
    /// run time. The program is loaded as it is (kprobes) or against a
    /// stand-in of its kind (fentry-like programs: `bpf_fentry_test6`), and
    /// its attach is left to the loader. Decided by the run for a target no
    /// catalogue kernel has; `attach_target` says more and wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<bool>,
}

/// The kernel functions an fentry-like placeholder is loaded against, in
/// order: `bpf_fentry_test6` (six arguments, in every kernel with fentry,
/// 5.5 and later), else a function every kernel has, so that a kernel
/// without fentry still gives its own answer about the program's kind.
pub const FENTRY_STAND_INS: &[&str] = &["bpf_fentry_test6", "vfs_read"];

/// Why a placeholder program is not attached.
pub fn placeholder_attach(section: &str) -> String {
    format!(
        "the loader's: section `{section}` names a placeholder it replaces at run time (no kernel of the catalogue has that function)"
    )
}

/// Attach targets in the loader's order of preference; a single string is
/// a list of one. Never empty, no empty name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTargets(Vec<String>);

impl AttachTargets {
    /// Targets in order; `None` when empty or when a name is empty.
    pub fn new(targets: Vec<String>) -> Option<AttachTargets> {
        (!targets.is_empty() && targets.iter().all(|t| !t.is_empty()))
            .then_some(AttachTargets(targets))
    }

    /// The targets, first preferred.
    pub fn all(&self) -> &[String] {
        &self.0
    }

    /// The preferred target.
    pub fn first(&self) -> &str {
        &self.0[0]
    }
}

impl Serialize for AttachTargets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AttachTargets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AttachTargets, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let targets = match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "must be a target name or a list of them, in the loader's order",
            )
        })? {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(ts) => ts,
        };
        AttachTargets::new(targets)
            .ok_or_else(|| serde::de::Error::custom("must name at least one target, none empty"))
    }
}

/// A count that may be "one per possible CPU".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A fixed number.
    Fixed(u32),
    /// `libbpf_num_possible_cpus()` in the guest.
    Cpus,
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Fixed(n) => s.serialize_u32(*n),
            Count::Cpus => s.serialize_str("cpus"),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or \"cpus\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                u32::try_from(v)
                    .map(Count::Fixed)
                    .map_err(|_| E::custom("must be 0 to 4294967295"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                u32::try_from(v)
                    .map(Count::Fixed)
                    .map_err(|_| E::custom("must be 0 to 4294967295"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Count, E> {
                match v {
                    "cpus" => Ok(Count::Cpus),
                    _ => Err(E::custom(format!("`{v}` is not a number or \"cpus\""))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_fixups_lay_over_the_objects_where_they_hold() {
        let fx: Fixups = serde_json::from_str(
            r#"{
                "programs": {"p": {"attach_target": "new_name", "optional": true}},
                "maps": {"m": {"max_entries": 8}},
                "on": [
                    {"release": "<5.8", "programs": {"p": {"attach_target": "old_name"}},
                     "maps": {"m": {"fallback_type": "perf_event_array"}}},
                    {"kernels": ["debian-11-5.10"], "variables": {"v": 1}}
                ]
            }"#,
        )
        .unwrap();
        let old = fx.for_kernel("ubuntu-20.04-5.4", "5.4.0-216-generic");
        let p = &old.programs["p"];
        assert_eq!(p.attach_target.as_ref().unwrap().all(), ["old_name"]);
        assert_eq!(p.optional, Some(true), "fields not set stay the object's");
        assert_eq!(old.maps["m"].max_entries, Some(Count::Fixed(8)));
        assert_eq!(
            old.maps["m"].fallback_type.as_deref(),
            Some("perf_event_array")
        );
        assert!(old.variables.is_empty() && old.on.is_empty());
        let d11 = fx.for_kernel("debian-11-5.10", "5.10.0-46-cloud-amd64");
        assert_eq!(
            d11.programs["p"].attach_target.as_ref().unwrap().all(),
            ["new_name"]
        );
        assert_eq!(d11.variables["v"], 1);
        let new = fx.for_kernel("debian-12-6.1", "6.1.0-9-cloud-amd64");
        assert_eq!(new.maps["m"].fallback_type, None);
        // Ranges.
        let r = ReleaseRange::parse(">=5.4, <5.10").unwrap();
        assert!(r.contains("5.4.0-216-generic") && r.contains("5.8.0"));
        assert!(!r.contains("5.10.0-46-cloud-amd64") && !r.contains("4.15.0-142-generic"));
        assert!(!r.contains("garbage"));
        for bad in ["5.8", "<five", "<5", "~5.8"] {
            assert!(ReleaseRange::parse(bad).is_err(), "{bad}");
        }
        // An entry that selects nothing is never taken.
        assert!(!KernelFixups::default().holds("k", "6.1.0"));
    }

    #[test]
    fn an_attach_target_is_one_name_or_the_loaders_ordered_list() {
        let parse = |json: &str| serde_json::from_str::<ProgramFixup>(json);
        let one = parse(r#"{"attach_target": "do_unlinkat"}"#).unwrap();
        assert_eq!(one.attach_target.as_ref().unwrap().all(), ["do_unlinkat"]);
        let many = parse(r#"{"attach_target": ["vfs_unlink", "do_unlinkat"]}"#).unwrap();
        let targets = many.attach_target.unwrap();
        assert_eq!(targets.first(), "vfs_unlink");
        assert_eq!(targets.all(), ["vfs_unlink", "do_unlinkat"]);
        // The job carries it back unchanged, a single name as a string.
        let back = serde_json::to_string(&one).unwrap();
        assert!(back.contains(r#""attach_target":"do_unlinkat""#), "{back}");
        assert_eq!(
            parse(
                &serde_json::to_string(&targets)
                    .map(|t| format!(r#"{{"attach_target":{t}}}"#))
                    .unwrap()
            )
            .unwrap()
            .attach_target
            .unwrap(),
            targets
        );
        for bad in [r#"[]"#, r#"[""]"#, r#""""#, "3"] {
            let e = parse(&format!(r#"{{"attach_target": {bad}}}"#)).unwrap_err();
            assert!(e.to_string().contains("target"), "{bad}: {e}");
        }
    }
}
