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
    #[arg(long, short = 'r', help_heading = "Compilation options")]
    pub release: bool,
    /// Build with the named profile.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "release",
        help_heading = "Compilation options"
    )]
    pub profile: Option<String>,
    /// Build for the target triple (the loaders; BPF objects are built for
    /// BPF whatever this says).
    #[arg(long, value_name = "TRIPLE", help_heading = "Compilation options")]
    pub target: Option<String>,
    /// Build every target of the selected packages (tests, examples,
    /// benches), for the objects their build scripts make.
    #[arg(long, help_heading = "Target selection")]
    pub all_targets: bool,
    /// Cargo's target directory.
    #[arg(long, value_name = "DIR", help_heading = "Compilation options")]
    pub target_dir: Option<PathBuf>,
    /// Assert that `Cargo.lock` will remain unchanged.
    #[arg(long, help_heading = "Manifest options")]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long, help_heading = "Manifest options")]
    pub offline: bool,
    /// Equivalent to specifying both --locked and --offline.
    #[arg(long, help_heading = "Manifest options")]
    pub frozen: bool,
    /// Override a cargo configuration value (cargo's `--config`,
    /// repeatable); bpfcompat's own file is `--config-file`.
    #[arg(
        long = "config",
        value_name = "KEY=VALUE|PATH",
        help_heading = "Manifest options"
    )]
    pub cargo_config: Vec<String>,
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
        if let Some(p) = &self.profile {
            a.extend(["--profile".into(), p.clone()]);
        }
        if let Some(t) = &self.target {
            a.extend(["--target".into(), t.clone()]);
        }
        if self.all_targets {
            a.push("--all-targets".into());
        }
        if let Some(t) = &self.target_dir {
            a.extend(["--target-dir".into(), t.display().to_string()]);
        }
        a.extend(self.manifest_args());
        a
    }

    /// The flags `cargo metadata` takes too: the lock, the network, the
    /// configuration.
    fn manifest_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (set, flag) in [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ] {
            if set {
                a.push(flag.to_string());
            }
        }
        for c in &self.cargo_config {
            a.extend(["--config".into(), c.clone()]);
        }
        a
    }

    /// The directory below the target directory a profile's artifacts go
    /// to (cargo's rule: `dev` and `test` build into `debug`, `bench` into
    /// `release`, any other profile into its own name).
    fn profile_dir(&self) -> String {
        match (self.profile.as_deref(), self.release) {
            (Some("dev" | "test"), _) | (None, false) => "debug".into(),
            (Some("release" | "bench"), _) | (None, true) => "release".into(),
            (Some(other), _) => other.to_string(),
        }
    }

    /// A bpfcompat configuration given to cargo's `--config` (its old
    /// meaning here): said, with the flag that takes it.
    pub fn check_config_flags(&self) -> Result<(), String> {
        for c in &self.cargo_config {
            let p = std::path::Path::new(c);
            if p.file_name().is_some_and(|n| n == "bpfcompat.toml") || is_bpfcompat_file(p) {
                return Err(format!(
                    "--config {c}: `--config` is cargo's (KEY=VALUE or a cargo configuration file); give bpfcompat's configuration with --config-file {c}"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `p` is a bpfcompat configuration file (it reads as one and sets
/// something), which a cargo configuration is not.
fn is_bpfcompat_file(p: &std::path::Path) -> bool {
    p.is_file()
        && bpfcompat_engine::config::load_config_file(p)
            .is_ok_and(|c| !c.objects.is_empty() || c.matrix.is_some() || c.kernels.is_some())
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
    args.check_config_flags()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut meta = MetadataCommand::new();
    meta.cargo_path(&cargo)
        .no_deps()
        .other_options(args.manifest_args());
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
        profile_dir: args.profile_dir(),
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
