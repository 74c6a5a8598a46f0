//! Checking user-supplied BPF objects before any guest boots, so a wrong
//! path or file fails in milliseconds with a clear message.
//!
//! An object is untrusted input: it is read only if it is a regular file of
//! sane size (a FIFO or `/dev/zero` must not hang or exhaust memory), and its
//! ELF structure is parsed whole (sections, names, symbols, relocations, BTF
//! headers) so a truncated or damaged file is refused here, once, instead of
//! booting every kernel to be called `UNKNOWN` there.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use object::Endianness;
use object::elf::{FileHeader64, SHF_EXECINSTR, SHT_NOBITS, SHT_REL, SHT_SYMTAB};
use object::read::elf::{FileHeader, SectionHeader};

use crate::errors::ObjectError;
use crate::wire::Fixups;

/// One object to validate.
#[derive(Debug, Clone)]
pub struct ObjectInput {
    /// Name in reports.
    pub name: String,
    /// The `.bpf.o` on the host.
    pub path: PathBuf,
    /// What the real loader changes before load.
    pub fixups: Fixups,
    /// A BTF file on the host per kernel profile, for kernels without BTF.
    pub btf: BTreeMap<String, PathBuf>,
    /// This object's fire-mode trigger (argv), overriding the run's.
    pub trigger: Option<Vec<String>>,
}

impl ObjectInput {
    /// An object loaded as compiled.
    pub fn plain(name: impl Into<String>, path: impl Into<PathBuf>) -> ObjectInput {
        ObjectInput {
            name: name.into(),
            path: path.into(),
            fixups: Fixups::default(),
            btf: BTreeMap::new(),
            trigger: None,
        }
    }
}

/// `e_machine` of eBPF objects.
pub(crate) const EM_BPF: u16 = 247;

/// Objects larger than this are refused (real BPF objects are a few MiB).
pub(crate) const MAX_OBJECT_BYTES: u64 = 256 << 20;

/// Checks that `path` is a regular file holding a well-formed 64-bit ELF
/// relocatable object for the BPF machine with at least one program or map.
pub fn check_bpf_object(path: &Path) -> Result<(), ObjectError> {
    let data = read_regular(path)?;
    if !data.starts_with(b"\x7fELF") {
        return Err(ObjectError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let malformed = |message: String| ObjectError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    let header = FileHeader64::<Endianness>::parse(&*data)
        .map_err(|e| malformed(format!("unreadable 64-bit ELF header: {e}")))?;
    let endian = header
        .endian()
        .map_err(|e| malformed(format!("unreadable ELF header: {e}")))?;
    let machine = header.e_machine(endian);
    if machine != EM_BPF {
        return Err(ObjectError::NotBpf {
            path: path.to_path_buf(),
            machine: format!("e_machine {machine}"),
        });
    }
    check_structure(header, endian, &data).map_err(malformed)
}

/// Reads a regular file of at most [`MAX_OBJECT_BYTES`]. The file is opened
/// without blocking and checked through its descriptor, so a FIFO or a
/// device is refused at once rather than read.
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>, ObjectError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let read_err = |source| ObjectError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(kind) = what {
        return Err(ObjectError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > MAX_OBJECT_BYTES {
        return Err(ObjectError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_OBJECT_BYTES,
        });
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_OBJECT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    Ok(data)
}

/// Everything libbpf will walk when it opens the object, bounds-checked.
fn check_structure(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    data: &[u8],
) -> Result<(), String> {
    let e_type = header.e_type(endian);
    if e_type != object::elf::ET_REL {
        return Err(format!(
            "not a relocatable object (e_type {e_type}); BPF objects come from `clang -target bpf -c`"
        ));
    }
    let sections = header
        .sections(endian, data)
        .map_err(|e| format!("section header table: {e}"))?;
    let (mut programs, mut maps) = (0, 0);
    for (i, s) in sections.enumerate() {
        let name = sections
            .section_name(endian, s)
            .map_err(|e| format!("section {}: unreadable name: {e}", i.0))?;
        let name = String::from_utf8_lossy(name);
        if s.sh_type(endian) != SHT_NOBITS {
            s.data(endian, data)
                .map_err(|_| format!("section {} `{name}` lies past the end of the file", i.0))?;
        }
        if s.sh_flags(endian) & u64::from(SHF_EXECINSTR) != 0 && s.sh_size(endian) > 0 {
            if s.sh_size(endian) % 8 != 0 {
                return Err(format!(
                    "section `{name}` is not a whole number of BPF instructions"
                ));
            }
            programs += 1;
        }
        if s.sh_type(endian) == SHT_REL {
            let (rels, _) = s
                .rel(endian, data)
                .map_err(|e| format!("relocations `{name}`: {e}"))?
                .unwrap_or((&[], object::read::SectionIndex(0)));
            let symbols = sections
                .symbols(endian, data, SHT_SYMTAB)
                .map_err(|e| format!("symbol table: {e}"))?;
            if let Some(r) = rels
                .iter()
                .find(|r| r.r_sym(endian) as usize >= symbols.len())
            {
                return Err(format!(
                    "relocations `{name}` name symbol {}, past the symbol table",
                    r.r_sym(endian)
                ));
            }
        }
        if holds_maps(&name) && s.sh_size(endian) > 0 {
            maps += 1;
        }
        match &*name {
            ".BTF" => check_btf(s.data(endian, data).unwrap_or_default(), endian)
                .map_err(|m| format!(".BTF: {m}"))?,
            ".BTF.ext" => check_btf_ext(s.data(endian, data).unwrap_or_default(), endian)
                .map_err(|m| format!(".BTF.ext: {m}"))?,
            _ => {}
        }
    }
    let symbols = sections
        .symbols(endian, data, SHT_SYMTAB)
        .map_err(|e| format!("symbol table: {e}"))?;
    if symbols.is_empty() {
        return Err(
            "no symbol table (stripped?); libbpf needs the object as clang wrote it".into(),
        );
    }
    for (i, sym) in symbols.iter().enumerate() {
        symbols
            .symbol_name(endian, sym)
            .map_err(|e| format!("symbol {i}: unreadable name: {e}"))?;
    }
    // A maps-only object (shared or pinned maps a loader creates first) is
    // judged like any other: its maps are created on each kernel.
    if programs == 0 && maps == 0 {
        return Err(
            "no BPF program and no map (no section holds instructions or map definitions)".into(),
        );
    }
    Ok(())
}

/// Whether a section of this name defines maps: BTF-defined or legacy map
/// definitions, or global data (which libbpf turns into array maps).
fn holds_maps(section: &str) -> bool {
    section == ".maps"
        || section == "maps"
        || [".data", ".rodata", ".bss", ".struct_ops"]
            .iter()
            .any(|p| section == *p || section.starts_with(&format!("{p}.")))
}

fn u32_at(b: &[u8], at: usize, endian: Endianness) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(match endian {
        Endianness::Little => u32::from_le_bytes(bytes),
        Endianness::Big => u32::from_be_bytes(bytes),
    })
}

/// `struct btf_header` and `struct btf_ext_header` start alike: magic
/// 0xeB9F, version 1, flags, `hdr_len`; then (offset, length) pairs counted
/// from the end of the header, which must lie inside the section.
fn check_sub_sections(b: &[u8], endian: Endianness, pairs: usize) -> Result<(), String> {
    let magic = b.get(..2).map(|m| match endian {
        Endianness::Little => u16::from_le_bytes([m[0], m[1]]),
        Endianness::Big => u16::from_be_bytes([m[0], m[1]]),
    });
    if magic != Some(0xeb9f) {
        return Err("bad magic".into());
    }
    if b.get(2) != Some(&1) {
        return Err(format!("version {:?}, expected 1", b.get(2)));
    }
    let hdr_len = u32_at(b, 4, endian).ok_or("truncated header")? as u64;
    if hdr_len < 8 + 8 * pairs as u64 || hdr_len > b.len() as u64 {
        return Err(format!("header length {hdr_len} does not fit"));
    }
    for k in 0..pairs {
        let off = u32_at(b, 8 + 8 * k, endian).ok_or("truncated header")? as u64;
        let len = u32_at(b, 12 + 8 * k, endian).ok_or("truncated header")? as u64;
        if hdr_len + off + len > b.len() as u64 {
            return Err(format!(
                "a part at {off}+{len} runs past the section's {} bytes",
                b.len()
            ));
        }
    }
    Ok(())
}

fn check_btf(b: &[u8], endian: Endianness) -> Result<(), String> {
    check_sub_sections(b, endian, 2)?; // types, strings
    check_btf_types(b, endian)
}

/// Every type record of a `.BTF` section: a kind the format has, its
/// trailing data inside the type section, its name inside the strings, and
/// the records ending exactly where the section says. A damaged section is
/// refused here instead of booting a guest whose libbpf then gives up.
fn check_btf_types(b: &[u8], endian: Endianness) -> Result<(), String> {
    let at = |o: usize| {
        u32_at(b, o, endian)
            .map(|v| v as usize)
            .ok_or("truncated header")
    };
    let hdr = at(4)?;
    let (types, types_len, strings_len) = (hdr + at(8)?, at(12)?, at(20)?);
    let end = types + types_len;
    let mut pos = types;
    let mut id = 1usize;
    while pos < end {
        let (Some(name_off), Some(info)) = (u32_at(b, pos, endian), u32_at(b, pos + 4, endian))
        else {
            return Err(format!("type #{id} is cut off"));
        };
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let extra = match kind {
            2 | 7..=12 | 16 | 18 => 0,
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => vlen * 12,
            6 | 13 => vlen * 8,
            k => return Err(format!("type #{id} has kind {k}, which BTF does not have")),
        };
        if name_off as usize >= strings_len.max(1) {
            return Err(format!(
                "type #{id} names string offset {name_off}, past the {strings_len} bytes of strings"
            ));
        }
        pos += 12 + extra;
        id += 1;
    }
    match pos == end {
        true => Ok(()),
        false => Err(format!("type #{} runs past the type section's end", id - 1)),
    }
}

fn check_btf_ext(b: &[u8], endian: Endianness) -> Result<(), String> {
    check_sub_sections(b, endian, 2) // func_info, line_info (CO-RE relocations optional)
}

/// Report names for object paths: the file name, or more of the path where
/// two files share a name.
pub fn display_names(paths: &[PathBuf]) -> Vec<String> {
    let base = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    paths
        .iter()
        .map(|p| {
            let b = base(p);
            if paths.iter().filter(|q| base(q) == b).count() > 1 {
                p.display().to_string()
            } else {
                b
            }
        })
        .collect()
}

#[cfg(test)]
/// A minimal relocatable BPF object (this crate's tests have no clang):
/// one program section, a symbol, a BTF header.
pub(crate) fn tiny_object() -> Vec<u8> {
    // r0 = 0; exit
    let code = [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    object_with(b"tracepoint/x", object::SectionKind::Text, &code)
}

#[cfg(test)]
/// A minimal relocatable BPF object whose one section besides the BTF
/// header is `name`, holding `data` under a symbol.
pub(crate) fn object_with(name: &[u8], kind: object::SectionKind, data: &[u8]) -> Vec<u8> {
    use object::write::{Object, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, SymbolFlags, SymbolKind, SymbolScope};
    let mut o = Object::new(
        BinaryFormat::Elf,
        Architecture::Bpf,
        object::Endianness::Little,
    );
    let text = o.add_section(Vec::new(), name.to_vec(), kind);
    o.append_section_data(text, data, 8);
    o.add_symbol(Symbol {
        name: b"sym".to_vec(),
        value: 0,
        size: data.len() as u64,
        kind: if kind == object::SectionKind::Text {
            SymbolKind::Text
        } else {
            SymbolKind::Data
        },
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    let btf = o.add_section(
        Vec::new(),
        b".BTF".to_vec(),
        object::SectionKind::ReadOnlyData,
    );
    // header: magic, version 1, flags 0, hdr_len 24, type 0+0, str 0+1
    let mut h = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
    h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    o.append_section_data(btf, &h, 4);
    o.write().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bytes(bytes: &[u8]) -> Result<(), ObjectError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bpf.o");
        std::fs::write(&p, bytes).unwrap();
        check_bpf_object(&p)
    }

    #[test]
    fn a_whole_object_passes_and_every_truncation_fails() {
        let obj = tiny_object();
        check_bytes(&obj).unwrap();
        for len in (0..obj.len()).step_by(7).chain([obj.len() - 1]) {
            assert!(
                check_bytes(&obj[..len]).is_err(),
                "truncated to {len} passed"
            );
        }
    }

    #[test]
    fn an_object_of_maps_alone_is_judged_one_with_neither_programs_nor_maps_is_not() {
        let data = object::SectionKind::Data;
        check_bytes(&object_with(b".maps", data, &[0; 32])).unwrap();
        check_bytes(&object_with(b".data.counters", data, &[0; 8])).unwrap();
        let err = check_bytes(&object_with(b".comment", data, &[0; 8]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no BPF program and no map"), "{err}");
    }

    #[test]
    fn damaged_structure_is_named() {
        let obj = tiny_object();
        let shoff = u64::from_le_bytes(obj[40..48].try_into().unwrap()) as usize;
        let mut past = obj.clone();
        past[40..48].copy_from_slice(&(obj.len() as u64 + 100).to_le_bytes());
        let err = check_bytes(&past).unwrap_err().to_string();
        assert!(err.contains("section header table"), "{err}");
        let mut zeroed = obj.clone();
        for b in &mut zeroed[shoff..] {
            *b = 0xff;
        }
        assert!(matches!(
            check_bytes(&zeroed),
            Err(ObjectError::Malformed { .. })
        ));
        let mut exec = obj.clone();
        exec[16] = 2; // ET_EXEC
        let err = check_bytes(&exec).unwrap_err().to_string();
        assert!(err.contains("relocatable"), "{err}");
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.bpf.o");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = std::time::Instant::now();
        for (p, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a device"),
            (dir.path(), "a directory"),
        ] {
            let err = check_bpf_object(p).unwrap_err();
            assert!(err.to_string().contains(kind), "{err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn rejects_missing_non_elf_and_non_bpf_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bpf.o");
        assert!(matches!(
            check_bpf_object(&missing),
            Err(ObjectError::Read { .. })
        ));
        let text = dir.path().join("text.o");
        std::fs::write(&text, "hello").unwrap();
        assert!(matches!(
            check_bpf_object(&text),
            Err(ObjectError::NotElf { .. })
        ));
        let me = std::env::current_exe().unwrap();
        let err = check_bpf_object(&me).unwrap_err();
        assert!(err.to_string().contains("e_machine 62"), "{err}");
    }

    /// aya's objects, with legacy or BTF maps, are rustc's; clang's are not.
    #[test]
    fn objects_rustc_built_are_judged_as_aya_loads_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for name in ["btfmap", "taskbtf", "bare", "bloom", "template"] {
            let p = root.join(format!("examples/aya/objects/{name}.bpf.o"));
            assert_eq!(built_for(&p), crate::wire::Validator::Aya, "{name}");
        }
        let clang = root.join("cargo-bpfcompat/tests/fixtures/minimal.bpf.o");
        assert_eq!(built_for(&clang), crate::wire::Validator::Libbpf);
        // A BTF blob that names a Rust source file, and one that does not.
        let btf = |strings: &[u8]| {
            let mut b = vec![0x9f, 0xeb, 1, 0];
            for v in [24u32, 0, 0, 0, strings.len() as u32] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(strings);
            b
        };
        assert!(btf_strings(&btf(b"\0src/main.rs\0")).any(|s| s.ends_with(b".rs")));
        assert!(!btf_strings(&btf(b"\0probe.bpf.c\0")).any(|s| s.ends_with(b".rs")));
        assert_eq!(
            btf_strings(&btf(b"")[..20]).count(),
            1,
            "a cut header has no strings"
        );
    }

    #[test]
    fn names_are_file_names_unless_ambiguous() {
        let names = display_names(&["a/x.bpf.o".into(), "b/x.bpf.o".into(), "c/y.bpf.o".into()]);
        assert_eq!(names, ["a/x.bpf.o", "b/x.bpf.o", "y.bpf.o"]);
    }
}

/// A BPF object found inside an executable.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// The skeleton's module name, when the executable still has symbols.
    pub name: Option<String>,
    /// The object's bytes.
    pub bytes: Vec<u8>,
}

/// The loader an object was built for: aya's, when it declares maps in the
/// legacy `maps` section (aya's `#[map]`, which libbpf 1.x refuses) or was
/// compiled by rustc (bpf-linker's output: aya-ebpf programs, loaded by aya
/// even when their maps are BTF maps libbpf could open), else libbpf. Only a
/// hint: the configuration and `--validator` override it.
pub fn built_for(path: &Path) -> crate::wire::Validator {
    read_regular(path).map_or(crate::wire::Validator::Libbpf, |b| built_for_bytes(&b))
}

/// [`built_for`] of an object's bytes.
pub fn built_for_bytes(bytes: &[u8]) -> crate::wire::Validator {
    use object::{Object, ObjectSection};
    let Ok(file) = object::File::parse(bytes) else {
        return crate::wire::Validator::Libbpf;
    };
    let legacy = file.sections().any(|s| s.name() == Ok("maps"));
    if legacy || built_by_rustc(&file) {
        crate::wire::Validator::Aya
    } else {
        crate::wire::Validator::Libbpf
    }
}

/// Whether rustc compiled the object: its DWARF producer says so
/// (`clang LLVM (rustc version …)` in `.debug_str`), or, with the DWARF
/// gone, its BTF line information names Rust source files.
fn built_by_rustc(file: &object::File) -> bool {
    use object::{Object, ObjectSection};
    let section = |name: &str| {
        file.section_by_name(name)
            .and_then(|s| s.uncompressed_data().ok())
    };
    let producer = b"(rustc version ";
    if section(".debug_str").is_some_and(|d| d.windows(producer.len()).any(|w| w == producer)) {
        return true;
    }
    section(".BTF").is_some_and(|btf| btf_strings(&btf).any(|s| s.ends_with(b".rs")))
}

/// The strings of a BTF blob's string section (none when its header is
/// not one).
fn btf_strings(btf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let u32_at = |at: usize| {
        btf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let strings = (btf.get(..2) == Some(&[0x9f, 0xeb]))
        .then(|| {
            let (hdr, off, len) = (u32_at(4)?, u32_at(16)?, u32_at(20)?);
            btf.get(hdr.checked_add(off)?..hdr.checked_add(off)?.checked_add(len)?)
        })
        .flatten()
        .unwrap_or(&[]);
    strings.split(|b| *b == 0)
}

/// Whether `bytes` start with an ELF header for the BPF machine.
pub fn is_bpf_elf(bytes: &[u8]) -> bool {
    bytes.len() >= 20
        && bytes.starts_with(b"\x7fELF")
        && u16::from_le_bytes([bytes[18], bytes[19]]) == EM_BPF
}

/// The length of the ELF file at the start of `bytes`: the end of its last
/// section or of its section header table, whichever is later.
fn elf_len(bytes: &[u8]) -> Option<usize> {
    use object::read::elf::SectionHeader;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(bytes).ok()?;
    let endian = header.endian().ok()?;
    let shoff = header.e_shoff(endian) as usize;
    let table_end = shoff + header.e_shnum(endian) as usize * header.e_shentsize(endian) as usize;
    let sections = header.section_headers(endian, bytes).ok()?;
    let data_end = sections
        .iter()
        .filter(|s| s.sh_type(endian) != object::elf::SHT_NOBITS)
        .map(|s| (s.sh_offset(endian) + s.sh_size(endian)) as usize)
        .max()
        .unwrap_or(0);
    Some(table_end.max(data_end)).filter(|&n| n <= bytes.len())
}

/// The objects libbpf-cargo (0.26 and later) embeds in every executable that
/// links a skeleton, in its `.bpf.objs` section. Objects are cut by the
/// section's symbols when there are any, else by their own ELF headers (a
/// stripped binary keeps the section but loses the symbols).
pub fn embedded_objects(exe: &[u8]) -> Vec<Embedded> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let Ok(file) = object::read::elf::ElfFile64::<object::Endianness>::parse(exe) else {
        return Vec::new();
    };
    let Some(section) = file.section_by_name(".bpf.objs") else {
        return Vec::new();
    };
    let Ok(data) = section.data() else {
        return Vec::new();
    };
    let mut out: Vec<Embedded> = file
        .symbols()
        .filter(|s| s.section_index() == Some(section.index()) && s.size() > 0)
        .filter_map(|s| {
            let start = usize::try_from(s.address().checked_sub(section.address())?).ok()?;
            let bytes = data.get(start..start + s.size() as usize)?;
            is_bpf_elf(bytes).then(|| Embedded {
                name: s.name().ok().and_then(skeleton_name),
                bytes: bytes.to_vec(),
            })
        })
        .collect();
    if out.is_empty() {
        let mut at = 0;
        while let Some(off) = data[at..].windows(4).position(|w| w == b"\x7fELF") {
            let start = at + off;
            match elf_len(&data[start..]) {
                Some(len) if is_bpf_elf(&data[start..]) => {
                    out.push(Embedded {
                        name: None,
                        bytes: data[start..start + len].to_vec(),
                    });
                    at = start + len;
                }
                _ => at = start + 4,
            }
        }
    }
    out
}

/// `_ZN…<module>3imp4DATA17h…E` (a skeleton's `DATA` static) → `<module>`.
fn skeleton_name(symbol: &str) -> Option<String> {
    let mut rest = symbol.strip_prefix("_ZN")?;
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0) {
        let len: usize = rest[..digits].parse().ok()?;
        let part = rest.get(digits..digits + len)?;
        parts.push(part);
        rest = &rest[digits + len..];
    }
    let data = parts.iter().rposition(|p| *p == "DATA")?;
    (data >= 2 && parts[data - 1] == "imp").then(|| parts[data - 2].to_string())
}

#[cfg(test)]
mod embedded_tests {
    use super::*;

    #[test]
    fn skeleton_names_from_mangled_symbols() {
        assert_eq!(
            skeleton_name("_ZN6loader7ringbuf3imp4DATA17h0123456789abcdefE").as_deref(),
            Some("ringbuf")
        );
        assert_eq!(skeleton_name("_ZN4main4DATA17h0123456789abcdefE"), None);
        assert_eq!(skeleton_name("not_mangled"), None);
    }

    #[test]
    fn non_elf_or_no_section_yields_nothing() {
        assert!(embedded_objects(b"hello").is_empty());
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(embedded_objects(&me).is_empty());
    }
}
