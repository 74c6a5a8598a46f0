//! The project's configured matrix, as `#[kernel_test]` defaults use it: the
//! `matrix` and `kernels` of the nearest `bpfcompat.toml`, or of
//! `[workspace.metadata.bpfcompat]` / `[package.metadata.bpfcompat]`, at or
//! above the test's package (cargo sets `CARGO_MANIFEST_DIR` for tests).

use std::path::{Path, PathBuf};

/// What the harness takes from the project's configuration.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Configured {
    /// The matrix: `default` or a path (resolved against the configuration file).
    pub matrix: Option<String>,
    /// The kernels tests run on by default.
    pub kernels: Option<Vec<String>>,
}

/// The configuration found from `start` upwards; empty when there is none.
pub(crate) fn configured(start: &Path) -> Configured {
    for dir in start.ancestors() {
        if let Some(c) = read(&dir.join("bpfcompat.toml"), |v| Some(v.clone())) {
            return c;
        }
        let meta = |v: &toml::Value| {
            ["workspace", "package"]
                .iter()
                .find_map(|s| v.get(s)?.get("metadata")?.get("bpfcompat").cloned())
        };
        if let Some(c) = read(&dir.join("Cargo.toml"), meta) {
            return c;
        }
    }
    Configured::default()
}

fn read(file: &Path, pick: impl Fn(&toml::Value) -> Option<toml::Value>) -> Option<Configured> {
    let text = std::fs::read_to_string(file).ok()?;
    let table = pick(&toml::from_str::<toml::Value>(&text).ok()?)?;
    let base: PathBuf = file.parent()?.to_path_buf();
    let matrix = table.get("matrix").and_then(|m| m.as_str()).map(|m| {
        if m == "default" {
            m.to_string()
        } else {
            base.join(m).display().to_string()
        }
    });
    let kernels = table.get("kernels").and_then(|k| k.as_array()).map(|a| {
        a.iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()
    });
    Some(Configured { matrix, kernels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_configuration_above_the_package_wins() {
        let d = tempfile::tempdir().unwrap();
        let pkg = d.path().join("probes");
        std::fs::create_dir(&pkg).unwrap();
        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"probes\"\n").unwrap();
        assert_eq!(configured(&pkg), Configured::default());
        std::fs::write(
            d.path().join("bpfcompat.toml"),
            "matrix = \"mine.toml\"\nkernels = [\"debian-12-6.1\"]\n[objects.x.expect_fail]\n",
        )
        .unwrap();
        let c = configured(&pkg);
        assert_eq!(c.kernels, Some(vec!["debian-12-6.1".to_string()]));
        assert_eq!(
            c.matrix,
            Some(d.path().join("mine.toml").display().to_string())
        );
        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"p\"\n[package.metadata.bpfcompat]\nkernels = [\"debian-11-5.10\"]\n").unwrap();
        assert_eq!(
            configured(&pkg).kernels,
            Some(vec!["debian-11-5.10".to_string()])
        );
    }
}
