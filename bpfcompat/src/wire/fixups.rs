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
    /// Another attach target: the kernel function for fentry/fexit/kprobe.
    pub attach_target: Option<String>,
    /// The kernel module of `attach_target`, when it lives in one.
    pub attach_module: Option<String>,
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
