//! The project's bpfcompat configuration: `bpfcompat.toml` beside the
//! workspace's Cargo.toml, else `[workspace.metadata.bpfcompat]` or
//! `[package.metadata.bpfcompat]` in it. Unknown keys and wrong types are
//! errors naming the file, the line and the key: a mistyped expectation in a
//! CI gate must never pass silently. One reader serves the CLI and the
//! `#[kernel_test]` harness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::classify::Code;
use crate::errors::ConfigError;
use crate::wire::{Fixups, MapFixup, ProgramFixup};
use serde::Deserialize;

/// Known failures: object → kernel → the code it is expected to fail with.
pub type Expectations = BTreeMap<String, BTreeMap<String, Code>>;

/// The configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `default`, `all`, `rpm` (shipped) or a matrix file, relative to the configuration file.
    pub matrix: Option<String>,
    /// Only these kernels of the matrix (default: all).
    pub kernels: Option<Vec<String>>,
    /// The kernels whose failures fail the run (default: the matrix's `required`).
    pub required: Option<Vec<String>>,
    /// Kernels that cannot be had (no mirror, no network) do not fail the
    /// run or the `#[kernel_test]` trials; they are listed with the fix.
    #[serde(default)]
    pub allow_unavailable: bool,
    /// Per object, by the name `cargo bpfcompat list` shows.
    #[serde(default)]
    pub objects: BTreeMap<String, ObjectConfig>,
    /// The file it came from.
    #[serde(skip)]
    pub origin: PathBuf,
    #[serde(skip)]
    text: String,
}

/// Settings of one object.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectConfig {
    /// Known floors: kernel → the code it fails with there.
    #[serde(default)]
    pub expect_fail: BTreeMap<String, Code>,
    /// A BTF file per kernel (for kernels without BTF), relative to the file.
    #[serde(default)]
    pub btf: BTreeMap<String, PathBuf>,
    /// Map fix-ups, by map name.
    #[serde(default)]
    pub maps: BTreeMap<String, MapFixup>,
    /// Program fix-ups, by program name.
    #[serde(default)]
    pub programs: BTreeMap<String, ProgramFixup>,
    /// Initial values of global variables, by name.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Groups of alternative programs.
    #[serde(default)]
    pub variants: Vec<Vec<String>>,
    /// Fix-ups on some kernels only (`[[objects.NAME.on]]` with `kernels`
    /// or `release`), laid over the others there, in order.
    #[serde(default)]
    pub on: Vec<crate::wire::KernelFixups>,
    /// `false`: the loader does not read globals through a skeleton's mmap.
    pub skeleton: Option<bool>,
    /// `"aya"` or `"libbpf"`: whose loading judges the object (default: aya
    /// for objects with aya's legacy `maps` section, else libbpf).
    pub validator: Option<crate::wire::Validator>,
    /// The fire-mode trigger for this object (a command run in the guest).
    pub trigger: Option<String>,
    /// Command mode, for a loader that runs until stopped: ready once a
    /// line of its output matches this pattern (as `--ready-line`).
    pub ready_line: Option<String>,
    /// Command mode: ready if still running after this long (`5s`; as
    /// `--ready-after`).
    pub ready_after: Option<String>,
    /// Command mode: how long a ready loader has to exit after SIGINT (as
    /// `--grace`).
    pub grace: Option<String>,
}

impl ObjectConfig {
    /// The loader fix-ups this object gets in the guest.
    pub fn fixups(&self) -> Fixups {
        Fixups {
            maps: self.maps.clone(),
            programs: self.programs.clone(),
            variables: self.variables.clone(),
            variants: self.variants.clone(),
            skeleton: self.skeleton,
            validator: self.validator,
            on: self.on.clone(),
        }
    }
}

#[derive(Deserialize)]
struct CargoToml {
    workspace: Option<Section>,
    package: Option<Section>,
}

#[derive(Deserialize)]
struct Section {
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    bpfcompat: Option<Config>,
}

/// Reads the configuration of the workspace at `root`; `None` when there is none.
pub fn load_config(root: &Path) -> Result<Option<Config>, ConfigError> {
    let own = root.join("bpfcompat.toml");
    if own.is_file() {
        return load_config_file(&own).map(Some);
    }
    let manifest = root.join("Cargo.toml");
    let text = read(&manifest)?;
    let parsed: CargoToml = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: manifest.clone(),
        source,
    })?;
    let ws = parsed
        .workspace
        .and_then(|s| s.metadata)
        .and_then(|m| m.bpfcompat);
    let pkg = parsed
        .package
        .and_then(|s| s.metadata)
        .and_then(|m| m.bpfcompat);
    let config = match (ws, pkg) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Twice { manifest });
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => return Ok(None),
    };
    Ok(Some(Config {
        origin: manifest,
        text,
        ..config
    }))
}

/// Reads a `bpfcompat.toml` file (`--config FILE`).
pub fn load_config_file(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let mut c: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    c.origin = path.to_path_buf();
    c.text = text;
    Ok(c)
}

/// The configuration nearest to `start`: in `start` or the first directory
/// above it that has a `bpfcompat.toml` or bpfcompat metadata in its
/// `Cargo.toml` (a test runs in its package's directory; the configuration
/// may be the workspace's). A file that is there but wrong is an error.
pub fn find_config(start: &Path) -> Result<Option<Config>, ConfigError> {
    for dir in start.ancestors() {
        if !dir.join("bpfcompat.toml").is_file() && !dir.join("Cargo.toml").is_file() {
            continue;
        }
        if let Some(c) = load_config(dir)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    crate::safe::read_text_input(path, crate::safe::TEXT_INPUT_LIMIT).map_err(|source| {
        ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// An object's configuration table name by its report name: without the
/// validator's suffix, its directories and `.bpf.o` (`dir/probe.bpf.o (aya)`
/// → `probe`).
pub fn table_stem(name: &str) -> &str {
    let name = name.split(" (").next().unwrap_or(name);
    let name = name.rsplit('/').next().unwrap_or(name);
    name.trim_end_matches(".o").trim_end_matches(".bpf")
}

/// The name or path of a run's matrix: `chosen` (the command line's, a
/// test's own), else the configuration's (a shipped name, or a file
/// confined below the configuration's directory), else `default`. The CLI
/// and the kernel-test harness choose by this one rule.
pub fn matrix_name(config: Option<&Config>, chosen: Option<&str>) -> Result<String, ConfigError> {
    if let Some(m) = chosen {
        return Ok(m.to_string());
    }
    match config.and_then(|c| c.matrix.as_ref().map(|m| (c, m))) {
        Some((_, m)) if crate::matrix::SHIPPED.contains(&m.as_str()) => Ok(m.clone()),
        Some((c, m)) => Ok(c.resolve(Path::new(m), "matrix")?.display().to_string()),
        None => Ok("default".into()),
    }
}

impl Config {
    /// ` (line N)` of the first line mentioning `needle`, for error messages.
    fn line_of(&self, needle: &str) -> String {
        self.text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| format!(", line {}", i + 1))
            .unwrap_or_default()
    }

    /// Checks the names the configuration uses against the matrix and the
    /// objects found, so that a typo is an error, not a silent no-op.
    /// Checks the names the configuration uses against the matrix's kernels
    /// and, where the run's objects are all there is (a workspace), its
    /// object tables against `objects`.
    pub fn validate(
        &self,
        kernels: &[String],
        objects: Option<&[String]>,
    ) -> Result<(), ConfigError> {
        let origin = self.origin.display().to_string();
        let kernel_ok = |k: &String, key: String| {
            if kernels.contains(k) {
                Ok(())
            } else {
                Err(ConfigError::UnknownKernel {
                    origin: origin.clone(),
                    line: self.line_of(k),
                    key,
                    kernel: k.clone(),
                    known: kernels.join(", "),
                })
            }
        };
        for k in self.kernels.iter().flatten() {
            kernel_ok(k, "kernels".into())?;
        }
        for k in self.required.iter().flatten() {
            kernel_ok(k, "required".into())?;
        }
        for (name, o) in &self.objects {
            if let Some(objects) = objects
                && !objects.contains(name)
            {
                return Err(ConfigError::UnknownObject {
                    origin,
                    line: self.line_of(&format!("objects.{name}")),
                    name: name.clone(),
                    found: objects.join(", "),
                });
            }
            for k in o.expect_fail.keys().chain(o.btf.keys()) {
                kernel_ok(k, format!("objects.{name}"))?;
            }
            for (i, on) in o.on.iter().enumerate() {
                for k in &on.kernels {
                    kernel_ok(k, format!("objects.{name}.on[{i}].kernels"))?;
                }
                if on.kernels.is_empty() && on.release.is_none() {
                    return Err(ConfigError::SelectsNothing {
                        origin,
                        name: name.clone(),
                        number: i + 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// The table of the object a report calls `name`: `[objects."name"]`,
    /// else the object's stem (`dir/probe.bpf.o (aya)` → `[objects.probe]`),
    /// as the docs write it.
    pub fn table_for(&self, name: &str) -> Option<&ObjectConfig> {
        self.objects
            .get(name)
            .or_else(|| self.objects.get(table_stem(name)))
    }

    /// The expected failures of the run's objects and commands (`names`, as
    /// reports call them): report name → kernel → code.
    pub fn expectations_for(&self, names: &[String]) -> Expectations {
        names
            .iter()
            .filter_map(|n| {
                let t = self.table_for(n)?;
                (!t.expect_fail.is_empty()).then(|| (n.clone(), t.expect_fail.clone()))
            })
            .collect()
    }

    /// The object tables that belong to none of the run's `names`: a table
    /// of a misspelt or absent object, which would silently do nothing.
    pub fn unmatched_tables(&self, names: &[String]) -> Vec<&str> {
        self.objects
            .keys()
            .filter(|t| !names.iter().any(|n| n == *t || table_stem(n) == t.as_str()))
            .map(String::as_str)
            .collect()
    }

    /// A path the configuration names under `key`, relative to its file and
    /// confined below its directory ([`crate::safe::confined`]).
    pub fn resolve(&self, p: &Path, key: &str) -> Result<PathBuf, ConfigError> {
        let dir = self.origin.parent().unwrap_or(Path::new("."));
        let dir = match dir.as_os_str().is_empty() {
            true => Path::new("."),
            false => dir,
        };
        crate::safe::confined(dir, p, key).map_err(|message| ConfigError::Outside {
            origin: self.origin.clone(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objects_table_is_found_by_its_stem_and_a_table_for_nothing_is_named() {
        let text = "[objects.loop.expect_fail]\n\"debian-11-5.10\" = \"UNSUPPORTED_HELPER\"\n[objects.\"ringbuf.bpf.o\"]\nexpect_fail = { \"debian-11-5.10\" = \"UNSUPPORTED_MAP_TYPE\" }\n[objects.lopo]\n";
        let c = load("bpfcompat.toml", text).unwrap().unwrap();
        let names: Vec<String> = ["dir/loop.bpf.o", "ringbuf.bpf.o", "loop.bpf.o (aya)"]
            .map(String::from)
            .to_vec();
        let e = c.expectations_for(&names);
        assert_eq!(
            e["dir/loop.bpf.o"]["debian-11-5.10"].as_str(),
            "UNSUPPORTED_HELPER"
        );
        assert_eq!(
            e["loop.bpf.o (aya)"]["debian-11-5.10"].as_str(),
            "UNSUPPORTED_HELPER"
        );
        assert_eq!(
            e["ringbuf.bpf.o"]["debian-11-5.10"].as_str(),
            "UNSUPPORTED_MAP_TYPE"
        );
        assert_eq!(c.unmatched_tables(&names), ["lopo"]);
    }

    #[test]
    fn any_text_is_a_configuration_or_an_error_never_a_panic() {
        // A bounded pass over damaged variants of a real configuration.
        let real = "matrix = \"default\"\nkernels = [\"debian-12-6.1\"]\n[objects.\"a.bpf.o\"]\nexpect_fail = { \"debian-11-5.10\" = \"UNSUPPORTED_HELPER\" }\n";
        let dir = tempfile::tempdir().unwrap();
        for cut in 0..real.len() {
            for junk in ["", "]", "=", "\"", "\u{0}", "[objects]", "\n[x]\n"] {
                let text = format!("{}{junk}{}", &real[..cut], &real[cut..]);
                write(dir.path(), "bpfcompat.toml", &text);
                let _ = load_config(dir.path());
            }
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// The configuration read from a directory holding just `name`.
    fn load(name: &str, text: &str) -> Result<Option<Config>, ConfigError> {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), name, text);
        load_config(d.path())
    }

    #[track_caller]
    fn mentions(text: impl std::fmt::Display, needles: &[&str]) {
        let text = text.to_string();
        if let Some(missing) = needles.iter().find(|n| !text.contains(**n)) {
            panic!("expected {missing:?} in:\n{text}");
        }
    }

    #[test]
    fn own_file_with_expectations_and_fixups() {
        let c = load("bpfcompat.toml", "matrix = \"default\"\n[objects.ringbuf]\nexpect_fail = { \"debian-11-5.10\" = \"UNSUPPORTED_MAP_TYPE\" }\n[objects.ringbuf.maps.events]\nmax_entries = \"cpus\"\n").unwrap().unwrap();
        assert_eq!(
            c.objects["ringbuf"].expect_fail["debian-11-5.10"],
            Code::UnsupportedMapType
        );
        assert_eq!(
            c.objects["ringbuf"].maps["events"].max_entries,
            Some(crate::wire::Count::Cpus)
        );
        c.validate(&["debian-11-5.10".into()], Some(&["ringbuf".into()]))
            .unwrap();
        let err = c
            .validate(&["debian-12-6.1".into()], Some(&["ringbuf".into()]))
            .unwrap_err();
        mentions(&err, &["debian-11-5.10", "line 3"]);
        let err = c
            .validate(&["debian-11-5.10".into()], Some(&["other".into()]))
            .unwrap_err();
        mentions(&err, &["[objects.ringbuf]", "line 2"]);
    }

    #[test]
    fn typos_and_bad_codes_name_key_and_line() {
        let err = load("bpfcompat.toml", "[objects.ringbuf]\nexpect_fial = {}\n").unwrap_err();
        mentions(&err, &["expect_fial", "line 2", "bpfcompat.toml"]);
        let err = load(
            "bpfcompat.toml",
            "[objects.ringbuf]\nexpect_fail = { \"k\" = \"UNSUPORTED\" }\n",
        )
        .unwrap_err();
        mentions(&err, &["UNSUPORTED", "line 2"]);
        let err = load(
            "bpfcompat.toml",
            "[objects.x.maps.m]\nmax_entries = \"many\"\n",
        )
        .unwrap_err();
        mentions(&err, &["\"cpus\"", "line 2"]);
    }

    #[test]
    fn per_kernel_fixups_name_known_kernels_and_valid_ranges() {
        let kernels = ["debian-11-5.10".to_string(), "debian-12-6.1".to_string()];
        let c = load(
            "bpfcompat.toml",
            "[[objects.p.on]]\nrelease = \">=5.4, <5.10\"\n[objects.p.on.programs.x]\nautoload = false\n",
        )
        .unwrap()
        .unwrap();
        c.validate(&kernels, None).unwrap();
        assert_eq!(c.objects["p"].fixups().on.len(), 1);
        let err = load("bpfcompat.toml", "[[objects.p.on]]\nrelease = \"5.8\"\n").unwrap_err();
        mentions(&err, &["no comparison", "line 2"]);
        let c = load(
            "bpfcompat.toml",
            "[[objects.p.on]]\nkernels = [\"debain-11\"]\n",
        )
        .unwrap()
        .unwrap();
        mentions(
            c.validate(&kernels, None).unwrap_err(),
            &["debain-11", "known kernels"],
        );
        let c = load(
            "bpfcompat.toml",
            "[[objects.p.on]]\n[objects.p.on.maps.m]\nmax_entries = 1\n",
        )
        .unwrap()
        .unwrap();
        mentions(
            c.validate(&kernels, None).unwrap_err(),
            &["selects no kernel"],
        );
    }

    #[test]
    fn cargo_metadata_tables() {
        let c = load("Cargo.toml", "[workspace]\nmembers = []\n[workspace.metadata.bpfcompat]\nkernels = [\"debian-12-6.1\"]\n").unwrap().unwrap();
        assert_eq!(
            c.kernels.as_deref(),
            Some(&["debian-12-6.1".to_string()][..])
        );
        let err = load(
            "Cargo.toml",
            "[package]\nname = \"x\"\n[package.metadata.bpfcompat]\nmatirx = \"default\"\n",
        )
        .unwrap_err();
        mentions(&err, &["matirx", "line 4"]);
        assert!(
            load("Cargo.toml", "[package]\nname = \"x\"\n")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn nearest_configuration_above_the_package_wins_and_a_broken_one_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let pkg = d.path().join("probes");
        std::fs::create_dir(&pkg).unwrap();
        write(&pkg, "Cargo.toml", "[package]\nname = \"probes\"\n");
        assert!(find_config(&pkg).unwrap().is_none());
        write(
            d.path(),
            "bpfcompat.toml",
            "matrix = \"mine.toml\"\nkernels = [\"debian-12-6.1\"]\n[objects.x.expect_fail]\n",
        );
        let c = find_config(&pkg).unwrap().unwrap();
        assert_eq!(c.kernels, Some(vec!["debian-12-6.1".to_string()]));
        write(d.path(), "mine.toml", "");
        assert_eq!(
            c.resolve(Path::new("mine.toml"), "matrix").unwrap(),
            d.path().join("mine.toml")
        );
        // Out of its directory: refused, naming the key.
        let e = c
            .resolve(Path::new("/etc/shadow"), "btf")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`btf = \"/etc/shadow\"`"), "{e}");
        assert!(c.resolve(Path::new("../x"), "matrix").is_err());
        write(
            &pkg,
            "Cargo.toml",
            "[package]\nname = \"p\"\n[package.metadata.bpfcompat]\nkernels = [\"debian-11-5.10\"]\n",
        );
        let c = find_config(&pkg).unwrap().unwrap();
        assert_eq!(c.kernels, Some(vec!["debian-11-5.10".to_string()]));
        write(
            &pkg,
            "Cargo.toml",
            "[package]\nname = \"p\"\n[package.metadata.bpfcompat]\nkernel = [\"x\"]\n",
        );
        let err = find_config(&pkg).unwrap_err();
        mentions(&err, &["kernel", "Cargo.toml"]);
    }
}
