//! `cargo build` of the user's workspace, with cargo's own selection flags,
//! reading what it built from its JSON messages.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cargo_metadata::{Message, MetadataCommand};
use clap::Args;

/// Cargo's usual selection flags (clap-cargo's, as cargo spells them),
/// passed through to `cargo build`.
#[derive(Args, Clone, Default, Debug)]
#[command(next_help_heading = "Package selection")]
pub struct CargoArgs {
    #[command(flatten)]
    pub manifest: clap_cargo::Manifest,
    #[command(flatten)]
    pub workspace: clap_cargo::Workspace,
    #[command(flatten)]
    pub features: clap_cargo::Features,
    /// Build in release mode.
    #[arg(long, short = 'r')]
    pub release: bool,
    /// Cargo's target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
}

impl CargoArgs {
    /// The manifest named with `--manifest-path`.
    pub fn manifest_path(&self) -> Option<&std::path::Path> {
        self.manifest.manifest_path.as_deref()
    }

    fn build_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(m) = self.manifest_path() {
            a.extend(["--manifest-path".into(), m.display().to_string()]);
        }
        let w = &self.workspace;
        for p in &w.package {
            a.extend(["--package".into(), p.clone()]);
        }
        if w.workspace || w.all {
            a.push("--workspace".into());
        }
        for e in &w.exclude {
            a.extend(["--exclude".into(), e.clone()]);
        }
        let f = &self.features;
        if !f.features.is_empty() {
            a.extend(["--features".into(), f.features.join(" ")]);
        }
        if f.all_features {
            a.push("--all-features".into());
        }
        if f.no_default_features {
            a.push("--no-default-features".into());
        }
        if self.release {
            a.push("--release".into());
        }
        if let Some(t) = &self.target_dir {
            a.extend(["--target-dir".into(), t.display().to_string()]);
        }
        a
    }
}

/// What the build produced that may hold BPF objects.
#[derive(Debug, Default)]
pub struct BuildOutput {
    /// The workspace root (where its Cargo.toml is).
    pub workspace_root: PathBuf,
    /// The target directory.
    pub target_dir: PathBuf,
    /// `(package name, OUT_DIR)` of every build script that ran.
    pub out_dirs: Vec<(String, PathBuf)>,
    /// `(package name, executable)` of every binary built.
    pub executables: Vec<(String, PathBuf)>,
    /// `debug` or `release`.
    pub profile_dir: String,
    /// `(package name, directory of its Cargo.toml)` of every workspace
    /// package.
    pub package_dirs: Vec<(String, PathBuf)>,
}

/// Builds the workspace with the cargo that invoked us (`$CARGO`).
pub fn build_workspace(args: &CargoArgs) -> Result<BuildOutput, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut meta = MetadataCommand::new();
    meta.cargo_path(&cargo).no_deps();
    if let Some(m) = args.manifest_path() {
        meta.manifest_path(m);
    }
    let metadata = meta
        .exec()
        .map_err(|e| format!("cannot read the workspace: {e}"))?;
    let name_of = |id: &cargo_metadata::PackageId| {
        metadata
            .packages
            .iter()
            .find(|p| &p.id == id)
            .map(|p| p.name.to_string())
            .unwrap_or_else(|| id.repr.rsplit('#').next().unwrap_or(&id.repr).to_string())
    };

    let mut child = Command::new(&cargo)
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .args(args.build_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    let mut out = BuildOutput {
        workspace_root: metadata.workspace_root.clone().into_std_path_buf(),
        target_dir: args
            .target_dir
            .clone()
            .unwrap_or_else(|| metadata.target_directory.clone().into_std_path_buf()),
        profile_dir: if args.release {
            "release".into()
        } else {
            "debug".into()
        },
        package_dirs: metadata
            .packages
            .iter()
            .filter_map(|p| {
                let dir = p.manifest_path.parent()?.as_std_path().to_path_buf();
                Some((p.name.to_string(), dir))
            })
            .collect(),
        ..BuildOutput::default()
    };
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for message in Message::parse_stream(stdout).map_while(Result::ok) {
        match message {
            Message::BuildScriptExecuted(s) => {
                out.out_dirs
                    .push((name_of(&s.package_id), s.out_dir.into_std_path_buf()));
            }
            Message::CompilerArtifact(a) => {
                if let Some(exe) = a.executable {
                    out.executables
                        .push((name_of(&a.package_id), exe.into_std_path_buf()));
                }
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "cargo build failed ({status}); its errors are above"
        ));
    }
    Ok(out)
}
