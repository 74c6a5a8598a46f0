//! The functions a kernel has, indexed once when its packages are
//! extracted: the image's from `System.map`, each module's from its symbol
//! table. With every catalogue kernel indexed, a hook no kernel has can be
//! told from one some kernels lack (a placeholder the loader replaces at
//! run time, see [`crate::placeholders`]), and the module that provides a
//! target can be named.
//!
//! Names are kept without the compiler's clone suffixes (`.isra.0`,
//! `.constprop.0`, `.cold`): `foo.isra.0` in a map means the kernel has a
//! function `foo`, renamed by its compiler.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// The index files of a cache entry.
pub(crate) const FUNCTIONS_FILE: &str = "functions";
pub(crate) const MODULE_FUNCTIONS_FILE: &str = "module-functions";
pub(crate) const MODULE_DEPS_FILE: &str = "module-deps";

/// The most a `System.map` may be (distro maps are 4–8 MiB).
pub(crate) const SYSTEM_MAP_LIMIT: u64 = 64 << 20;
/// The most an index file may be when read back.
const INDEX_LIMIT: u64 = 64 << 20;

/// Functions of one kernel: its image's, and its modules' with the module
/// that defines each.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Functions {
    /// Whether the image's functions were read (from a `System.map` with
    /// text symbols, or the image's BTF): without them there is no index.
    pub image_indexed: bool,
    pub image: BTreeSet<String>,
    /// Function name → module name (the first module in path order).
    pub modules: BTreeMap<String, String>,
    /// Module → the modules it needs (its `.modinfo` `depends=`).
    pub deps: BTreeMap<String, Vec<String>>,
}

impl Functions {
    /// Adds the text symbols of a `System.map` (`<address> <type> <name>`).
    pub(crate) fn read_system_map(&mut self, map: &mut dyn Read) -> std::io::Result<()> {
        let bytes = crate::safe::read_within(map, SYSTEM_MAP_LIMIT, "System.map")?;
        for line in String::from_utf8_lossy(&bytes).lines() {
            let mut words = line.split_ascii_whitespace();
            let (Some(_), Some(kind), Some(name)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            if matches!(kind, "T" | "t" | "W" | "w")
                && let Some(name) = base_name(name)
            {
                self.image.insert(name.to_string());
            }
        }
        // Debian's is a stub that points to the `-dbg` package.
        self.image_indexed = !self.image.is_empty();
        Ok(())
    }

    /// Adds the functions a module's ELF defines, and what it depends on; a
    /// module that does not parse adds nothing (it is indexed, not trusted).
    pub(crate) fn read_module(&mut self, module: &str, elf: &[u8]) {
        let Ok(file) = object::File::parse(elf) else {
            return;
        };
        let depends = file
            .section_by_name(".modinfo")
            .and_then(|s| s.data().ok())
            .and_then(|d| {
                d.split(|b| *b == 0)
                    .find_map(|kv| kv.strip_prefix(b"depends="))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .unwrap_or_default();
        self.deps.entry(module.to_string()).or_insert_with(|| {
            depends
                .split(',')
                .filter(|d| crate::safe::is_safe_name(d))
                .map(|d| d.replace('-', "_"))
                .collect()
        });
        for s in file.symbols() {
            if s.kind() == SymbolKind::Text
                && s.is_definition()
                && let Ok(name) = s.name()
                && let Some(name) = base_name(name)
            {
                self.modules
                    .entry(name.to_string())
                    .or_insert_with(|| module.to_string());
            }
        }
    }

    /// Adds another package's functions.
    pub(crate) fn merge(&mut self, other: Functions) {
        self.image_indexed |= other.image_indexed;
        self.image.extend(other.image);
        for (f, m) in other.modules {
            self.modules.entry(f).or_insert(m);
        }
        for (m, d) in other.deps {
            self.deps.entry(m).or_insert(d);
        }
    }

    /// Takes the image's functions from its own BTF where no `System.map`
    /// gave them.
    pub(crate) fn read_image_btf(&mut self, vmlinuz: &Path) -> std::io::Result<()> {
        if self.image_indexed {
            return Ok(());
        }
        let image = crate::safe::read_input(vmlinuz, super::image_btf::IMAGE_LIMIT)?;
        if let Some(names) = super::image_btf::functions(&image) {
            self.image = names
                .iter()
                .filter_map(|n| base_name(n))
                .map(str::to_string)
                .collect();
            self.image_indexed = true;
        }
        Ok(())
    }

    /// Writes the index into a cache entry being built; nothing without the
    /// image's functions (the entry is then not indexed).
    pub(crate) fn write(&self, dir: &Path) -> std::io::Result<bool> {
        if !self.image_indexed {
            return Ok(false);
        }
        let mut image = String::from("\n");
        for f in &self.image {
            image.push_str(f);
            image.push('\n');
        }
        crate::private::write_file(&dir.join(FUNCTIONS_FILE), image.as_bytes())?;
        let mut modules = String::new();
        for (f, m) in &self.modules {
            modules.push_str(&format!("{f}\t{m}\n"));
        }
        crate::private::write_file(&dir.join(MODULE_FUNCTIONS_FILE), modules.as_bytes())?;
        let mut deps = String::new();
        for (m, d) in &self.deps {
            deps.push_str(&format!("{m}\t{}\n", d.join(",")));
        }
        crate::private::write_file(&dir.join(MODULE_DEPS_FILE), deps.as_bytes())?;
        Ok(true)
    }
}

/// A kernel's function names, read back from its cache entry.
#[derive(Debug)]
pub struct Index {
    /// `\n`-separated image names, with a `\n` before the first.
    image: String,
    /// `name\tmodule` lines.
    modules: String,
    /// `module\tdep,dep` lines (absent in entries indexed before them).
    deps: String,
}

impl Index {
    /// Reads the index of the entry at `dir`, each file within its limit.
    pub(crate) fn read(dir: &Path) -> std::io::Result<Index> {
        Ok(Index {
            image: read_index_file(&dir.join(FUNCTIONS_FILE))?,
            modules: read_index_file(&dir.join(MODULE_FUNCTIONS_FILE))?,
            deps: read_index_file(&dir.join(MODULE_DEPS_FILE)).unwrap_or_default(),
        })
    }

    /// Whether the image has a function `name` (clone suffixes aside).
    pub(crate) fn in_image(&self, name: &str) -> bool {
        base_name(name).is_some_and(|n| self.image.contains(&format!("\n{n}\n")))
    }

    /// The module that defines a function `name`, if one does.
    pub(crate) fn module_of(&self, name: &str) -> Option<&str> {
        let n = base_name(name)?;
        self.modules.lines().find_map(|l| {
            let (f, m) = l.split_once('\t')?;
            (f == n).then_some(m)
        })
    }

    /// `module` and every module it needs, each after its dependencies;
    /// `None` when the index does not know one of them.
    pub(crate) fn with_dependencies(&self, module: &str) -> Option<Vec<String>> {
        let deps = |m: &str| -> Option<Vec<String>> {
            self.deps.lines().find_map(|l| {
                let (name, d) = l.split_once('\t')?;
                (name == m).then(|| {
                    d.split(',')
                        .filter(|d| !d.is_empty())
                        .map(String::from)
                        .collect()
                })
            })
        };
        let mut order = Vec::new();
        let mut stack = vec![(module.to_string(), false)];
        // Depth-first, dependencies first; bounded by the modules indexed.
        while let Some((m, expanded)) = stack.pop() {
            if order.contains(&m) {
                continue;
            }
            if expanded {
                order.push(m);
                continue;
            }
            if stack.len() > 4096 {
                return None;
            }
            let needs = deps(&m)?;
            stack.push((m, true));
            stack.extend(
                needs
                    .into_iter()
                    .filter(|d| !order.contains(d))
                    .map(|d| (d, false)),
            );
        }
        Some(order)
    }

    /// Whether this kernel has a function `name`, in its image or a module.
    pub fn has(&self, name: &str) -> bool {
        self.in_image(name) || self.module_of(name).is_some()
    }
}

/// Reads an index file the cache wrote: never through a link planted in
/// its place, within [`INDEX_LIMIT`].
fn read_index_file(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let bytes = crate::safe::read_within(file, INDEX_LIMIT, &path.display().to_string())?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// A symbol's name without its compiler clone suffix; `None` for names
/// that are no function a program could name (empty, padding symbols).
pub(crate) fn base_name(name: &str) -> Option<&str> {
    let base = name.split('.').next().unwrap_or(name);
    (!base.is_empty() && !base.starts_with("__pfx_") && !base.starts_with("__cfi_")).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_map_gives_its_text_symbols_without_clone_suffixes() {
        let map = "ffffffff81000000 T _stext\n\
                   ffffffff81001000 t do_sys_openat2.isra.0\n\
                   ffffffff81002000 T __pfx_vfs_read\n\
                   ffffffff81002010 T vfs_read\n\
                   ffffffff81003000 D jiffies\n\
                   ffffffff81004000 W arch_cpu_idle\n\
                   garbage\n";
        let mut f = Functions::default();
        f.read_system_map(&mut map.as_bytes()).unwrap();
        assert!(f.image_indexed);
        let got: Vec<&str> = f.image.iter().map(String::as_str).collect();
        assert_eq!(
            got,
            ["_stext", "arch_cpu_idle", "do_sys_openat2", "vfs_read"]
        );

        let dir = tempfile::tempdir().unwrap();
        f.modules.insert("veth_xmit".into(), "veth".into());
        assert!(f.write(dir.path()).unwrap());
        let index = Index::read(dir.path()).unwrap();
        assert!(index.in_image("vfs_read"));
        assert!(index.has("do_sys_openat2.isra.0"));
        assert!(!index.in_image("jiffies"));
        assert!(!index.in_image("vfs_rea"));
        assert_eq!(index.module_of("veth_xmit"), Some("veth"));
        assert!(index.has("veth_xmit") && !index.in_image("veth_xmit"));
        assert!(!index.has("dummy_file_open"));
    }

    #[test]
    fn a_module_comes_after_everything_it_depends_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Functions::default();
        f.read_system_map(&mut "ffffffff81000000 T vfs_read\n".as_bytes())
            .unwrap();
        for (m, d) in [
            ("xfs", vec!["libcrc32c", "crc_t10dif"]),
            ("libcrc32c", vec![]),
            ("crc_t10dif", vec!["crct10dif_common"]),
            ("crct10dif_common", vec![]),
            ("broken", vec!["not_indexed"]),
        ] {
            f.deps
                .insert(m.into(), d.into_iter().map(String::from).collect());
        }
        f.write(dir.path()).unwrap();
        let index = Index::read(dir.path()).unwrap();
        let order = index.with_dependencies("xfs").unwrap();
        assert_eq!(order.last().map(String::as_str), Some("xfs"));
        let at = |m: &str| order.iter().position(|o| o == m).unwrap();
        assert!(at("crct10dif_common") < at("crc_t10dif"));
        assert_eq!(order.len(), 4);
        assert_eq!(index.with_dependencies("broken"), None);
        assert_eq!(index.with_dependencies("unknown"), None);
    }

    #[test]
    fn without_a_system_map_nothing_is_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Functions::default();
        f.read_module("veth", b"not an ELF");
        assert!(f.modules.is_empty());
        assert!(!f.write(dir.path()).unwrap());
        assert!(Index::read(dir.path()).is_err());
    }

    #[test]
    fn a_modules_defined_functions_are_indexed_by_module() {
        // This test binary is an ELF with functions of its own.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut f = Functions::default();
        f.read_module("itself", &me);
        assert!(f.modules.len() > 100, "{}", f.modules.len());
        assert!(f.modules.values().all(|m| m == "itself"));
    }
}
