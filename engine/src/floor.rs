//! What an object needs of a kernel, read from its ELF on the host, and its
//! floor: the oldest release where all of it exists.
//!
//! A cell names its first blocker; the floor puts every blocker in view. A
//! kernel older than the floor failing is expected; one at or above it that
//! fails is the interesting case (a backport missing, a build option, a
//! module), and the report says which it is. The releases come from the
//! tables in [`crate::releases`] (upstream commits).

use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
use serde::{Deserialize, Serialize};

use crate::releases::{
    attach_since, features, helper_name, helper_since, kfunc_since, map_type_since,
    prog_type_since, release_older_than,
};

/// One thing an object needs and the release that brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    /// What (`ringbuf map \`events\``, `bpf_loop`, `bounded loops`).
    pub feature: String,
    /// The first Linux release with it (`5.8`).
    pub since: String,
}

/// An object's needs and its floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFloor {
    /// The object's name in the report.
    pub object: String,
    /// The oldest release with every need; `None` when none is known.
    pub floor: Option<String>,
    /// Every need, newest first.
    pub needs: Vec<Need>,
}

/// Where a kernel stands against an object's floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloorPlace {
    /// Older than the floor: a failure there is expected.
    Below,
    /// At or above it: a failure there is not the release's.
    AtOrAbove,
}

impl ObjectFloor {
    /// The needs and floor of the object `name` whose bytes are `bytes`.
    pub fn of(name: &str, bytes: &[u8]) -> ObjectFloor {
        let mut needs = needs(bytes);
        needs.sort_by(|a, b| newer_first(&a.since, &b.since).then(a.feature.cmp(&b.feature)));
        needs.dedup();
        ObjectFloor {
            object: name.to_string(),
            floor: needs.first().map(|n| n.since.clone()),
            needs,
        }
    }

    /// Adds a need the run found (not in the ELF: a target a kernel has in
    /// a module), moving the floor up where it is newer.
    pub fn add(&mut self, need: Need) {
        if self.needs.contains(&need) {
            return;
        }
        self.needs.push(need);
        self.needs
            .sort_by(|a, b| newer_first(&a.since, &b.since).then(a.feature.cmp(&b.feature)));
        self.floor = self.needs.first().map(|n| n.since.clone());
    }

    /// Where a kernel of `release` (`uname -r`) stands; `None` when either
    /// is unknown.
    pub fn place(&self, release: &str) -> Option<FloorPlace> {
        let floor = self.floor.as_deref()?;
        Some(match release_older_than(release, floor)? {
            true => FloorPlace::Below,
            false => FloorPlace::AtOrAbove,
        })
    }

    /// The needs that came with the floor's release, for the sentence that
    /// names what sets it.
    pub(crate) fn at_floor(&self) -> Vec<&str> {
        self.needs
            .iter()
            .filter(|n| Some(&n.since) == self.floor.as_ref())
            .map(|n| n.feature.as_str())
            .collect()
    }
}

/// The floors of a run's objects (read again within the object limits;
/// one that cannot be read gets none).
pub fn of_objects<'a>(
    objects: impl IntoIterator<Item = (&'a str, &'a std::path::Path)>,
) -> Vec<ObjectFloor> {
    objects
        .into_iter()
        .filter_map(|(name, path)| {
            let bytes = crate::objects::read_regular(path).ok()?;
            Some(ObjectFloor::of(name, &bytes))
        })
        .collect()
}

fn newer_first(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| {
        let mut p = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        (p.next().unwrap_or(0), p.next().unwrap_or(0))
    };
    key(b).cmp(&key(a))
}

/// Everything the object at `bytes` needs that a release brought.
pub fn needs(bytes: &[u8]) -> Vec<Need> {
    let Ok(file) = object::File::parse(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut need = |feature: String, since: &str| {
        out.push(Need {
            feature,
            since: since.to_string(),
        });
    };
    for section in file.sections() {
        let Ok(name) = section.name() else { continue };
        if section.kind() == SectionKind::Text {
            if name != ".text" {
                program_needs(name, &mut need);
            }
        } else if is_global_data(name) && section.size() > 0 {
            need("global variables".into(), features::GLOBAL_DATA);
        } else if name == ".struct_ops.link" || name.starts_with(".struct_ops.link.") {
            need("struct_ops links".into(), features::STRUCT_OPS_LINK);
        } else if name == ".struct_ops" || name.starts_with(".struct_ops.") {
            need("struct_ops maps".into(), "5.6");
        }
    }
    for (section, range) in reachable_code(&file) {
        if let Some(code) = file
            .section_by_index(section)
            .ok()
            .and_then(|s| s.data().ok())
            .and_then(|d| d.get(range.clone()))
        {
            let sec = file.section_by_index(section).expect("found above");
            instruction_needs(&file, &sec, code, range.start, &mut need);
        }
    }
    let btf_maps = btf_map_types(&file);
    for (map, map_type) in &btf_maps {
        let type_name = crate::wire::trace::map_type_name(*map_type);
        if let Some(since) = map_type_since(&type_name) {
            need(format!("{type_name} map `{map}`"), since);
        }
    }
    // aya, which loads rustc's objects, creates a BTF-defined map with its
    // BTF type IDs and the object's BTF (see the rule `aya_btf_map`).
    if !btf_maps.is_empty() && crate::objects::built_for_bytes(bytes) == crate::wire::Validator::Aya
    {
        need(
            "BTF-defined maps as aya creates them (BTF type IDs, the object's BTF)".into(),
            crate::releases::features::AYA_BTF_MAPS,
        );
    }
    out
}

fn is_global_data(name: &str) -> bool {
    [".data", ".bss", ".rodata"]
        .iter()
        .any(|p| name == *p || name.starts_with(&format!("{p}.")))
        && !name.starts_with(".rodata.str")
        && !name.starts_with(".rodata.cst")
}

/// A program section's type, and the link its attach needs where loaders
/// have no older way (XDP, cgroup and tc programs attach through netlink or
/// BPF_PROG_ATTACH before their links).
fn program_needs(section: &str, need: &mut impl FnMut(String, &str)) {
    let hook = crate::wire::Hook::new(section);
    if let Some(t) = hook.prog_type()
        && let Some(since) = prog_type_since(t)
    {
        need(format!("{t} programs"), since);
    }
    if !hook.has_older_attach()
        && let Some((what, since)) = attach_since(hook)
    {
        need(what.to_string(), since);
    }
}

/// What the instructions of one code section need: helpers by number,
/// calls to other functions (4.16) and to kfuncs (by their relocation's
/// name), back-edges (bounded loops, 5.3), 32-bit jumps (5.1) and atomic
/// operations beyond add (5.12).
fn instruction_needs(
    file: &object::File,
    section: &object::Section,
    code: &[u8],
    base: usize,
    need: &mut impl FnMut(String, &str),
) {
    let relocated = relocations(file, section);
    let mut i = 0;
    while i + 8 <= code.len() {
        let insn = &code[i..i + 8];
        let (op, src) = (insn[0], insn[1] >> 4);
        let off = i16::from_le_bytes([insn[2], insn[3]]);
        let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        let class = op & 0x07;
        match (op, class) {
            // ld_imm64 takes two slots; one that loads a function's address
            // passes a callback (bpf_loop, bpf_for_each_map_elem, timers).
            (0x18, _) => {
                if relocated
                    .get(&((base + i) as u64))
                    .is_some_and(|r| r.code.is_some())
                {
                    need(
                        "callbacks (a function passed to a helper)".into(),
                        features::CALLBACK,
                    );
                }
                i += 8;
            }
            (0x85, _) => match src {
                0 => {
                    if let Some(since) = u32::try_from(imm).ok().and_then(helper_since) {
                        let name = helper_name(imm as u32).unwrap_or_default();
                        need(name, since);
                    }
                }
                1 => need("calls between BPF functions".into(), "4.16"),
                2 => {
                    let name = relocated
                        .get(&((base + i) as u64))
                        .map(|r| r.name.clone())
                        .unwrap_or_default();
                    match kfunc_since(&name) {
                        Some(since) => need(format!("kfunc {name}"), since),
                        None => need("kfunc calls".into(), "5.13"),
                    }
                }
                _ => {}
            },
            // An exit, and calls, are no jumps.
            (0x95 | 0x96, _) => {}
            (_, 0x05 | 0x06) if off < 0 => need("bounded loops (back-edges)".into(), "5.3"),
            _ => {}
        }
        if class == 0x06 {
            need("32-bit jumps (JMP32)".into(), "5.1");
        }
        // BPF_STX | BPF_ATOMIC: plain add (the old XADD) is old; fetch,
        // and/or/xor, xchg, cmpxchg came in 5.12.
        if class == 0x03 && op & 0xe0 == 0xc0 && imm != 0 {
            need(
                "atomic operations (fetch, and/or/xor, xchg, cmpxchg)".into(),
                "5.12",
            );
        }
        i += 8;
    }
}

/// A relocation's symbol: its name, and where it points in code (section
/// and byte offset) when it is a function or a code section's symbol.
struct Reloc {
    name: String,
    code: Option<(object::SectionIndex, u64)>,
}

/// A code section's relocations, by the offset of the instruction.
fn relocations(
    file: &object::File,
    section: &object::Section,
) -> std::collections::BTreeMap<u64, Reloc> {
    section
        .relocations()
        .filter_map(|(offset, r)| {
            let object::RelocationTarget::Symbol(i) = r.target() else {
                return None;
            };
            let symbol = file.symbol_by_index(i).ok()?;
            // A static function is reached through its section's symbol.
            let code = symbol
                .section_index()
                .filter(|s| {
                    file.section_by_index(*s)
                        .is_ok_and(|s| s.kind() == SectionKind::Text)
                })
                .filter(|_| {
                    matches!(
                        symbol.kind(),
                        object::SymbolKind::Text | object::SymbolKind::Section
                    )
                })
                .map(|s| (s, symbol.address()));
            Some((
                offset,
                Reloc {
                    name: symbol.name().ok()?.to_string(),
                    code,
                },
            ))
        })
        .collect()
}

/// The code the kernel is given: every program section whole, and of the
/// functions in `.text` only those a program calls or passes as a callback
/// (transitively), as libbpf and aya load them. A function no program
/// reaches (a compiler's memcpy, say) needs nothing of the kernel.
fn reachable_code(file: &object::File) -> Vec<(object::SectionIndex, std::ops::Range<usize>)> {
    // Functions by section: start and end offsets.
    let functions: Vec<(object::SectionIndex, u64, u64)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
        .filter_map(|s| Some((s.section_index()?, s.address(), s.address() + s.size())))
        .collect();
    let mut out: Vec<(object::SectionIndex, std::ops::Range<usize>)> = Vec::new();
    let mut todo: Vec<(object::SectionIndex, std::ops::Range<usize>)> = file
        .sections()
        .filter(|s| s.kind() == SectionKind::Text && s.name() != Ok(".text"))
        .map(|s| (s.index(), 0..s.size() as usize))
        .collect();
    while let Some((index, range)) = todo.pop() {
        if out
            .iter()
            .any(|(i, r)| *i == index && r.start == range.start)
        {
            continue;
        }
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Some(code) = section.data().ok().and_then(|d| d.get(range.clone())) else {
            continue;
        };
        let relocated = relocations(file, &section);
        let mut i = 0;
        while i + 8 <= code.len() {
            let at = (range.start + i) as u64;
            let (op, src) = (code[i], code[i + 1] >> 4);
            let imm = i64::from(i32::from_le_bytes([
                code[i + 4],
                code[i + 5],
                code[i + 6],
                code[i + 7],
            ]));
            // Where a call (to another function) or a function's address
            // points: through its relocation, or relative in this section.
            let target = match (op, src, relocated.get(&at).and_then(|r| r.code)) {
                (0x85, 1, Some((s, addr))) => Some((s, addr as i64 + (imm + 1) * 8)),
                (0x85, 1, None) => Some((index, at as i64 + (imm + 1) * 8)),
                (0x18, _, Some((s, addr))) => Some((s, addr as i64 + imm)),
                _ => None,
            };
            if let Some((s, offset)) = target
                && let Some((_, start, end)) = functions.iter().find(|(fs, start, end)| {
                    *fs == s && (*start as i64..*end as i64).contains(&offset)
                })
            {
                todo.push((s, *start as usize..*end as usize));
            }
            i += if op == 0x18 { 16 } else { 8 };
        }
        out.push((index, range));
    }
    out
}

/// The map type of every map in the `.maps` section, by its BTF: the
/// `type` member of each map's struct is a pointer to an array whose length
/// is the type (libbpf's `__uint(type, ...)`).
fn btf_map_types(file: &object::File) -> Vec<(String, u32)> {
    let Some(btf) = file
        .section_by_name(".BTF")
        .and_then(|s| s.uncompressed_data().ok())
    else {
        return Vec::new();
    };
    Btf::parse(&btf).map(|b| b.map_types()).unwrap_or_default()
}

/// The few BTF facts the map types need.
struct Btf<'a> {
    strings: &'a [u8],
    /// Per type ID (index 0 is void): kind, name offset, size-or-type, and
    /// its trailing data.
    types: Vec<(u32, u32, u32, &'a [u8])>,
}

impl<'a> Btf<'a> {
    fn parse(b: &'a [u8]) -> Option<Btf<'a>> {
        let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
        if b.get(..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr = u32_at(4)? as usize;
        let (t_off, t_len) = (hdr + u32_at(8)? as usize, u32_at(12)? as usize);
        let (s_off, s_len) = (hdr + u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = b.get(s_off..s_off.checked_add(s_len)?)?;
        let mut types = vec![(0, 0, 0, &b[..0])];
        let (mut pos, end) = (t_off, t_off.checked_add(t_len)?);
        while pos < end {
            let (name, info, size) = (u32_at(pos)?, u32_at(pos + 4)?, u32_at(pos + 8)?);
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => vlen * 12,
                6 | 13 => vlen * 8,
                _ => 0,
            };
            types.push((kind, name, size, b.get(pos + 12..pos + 12 + extra)?));
            pos += 12 + extra;
        }
        Some(Btf { strings, types })
    }

    fn name(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|c| *c == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or_default()
    }

    /// Through typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&(u32, u32, u32, &'a [u8])> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.0 {
                8..=11 | 18 => id = t.2,
                _ => return Some(t),
            }
        }
        None
    }

    fn map_types(&self) -> Vec<(String, u32)> {
        let word = |d: &[u8], o: usize| {
            d.get(o..o + 4)
                .map(|w| u32::from_le_bytes(w.try_into().unwrap_or_default()))
        };
        let mut out = Vec::new();
        let Some(maps) = self
            .types
            .iter()
            .find(|t| t.0 == 15 && self.name(t.1) == ".maps")
        else {
            return out;
        };
        for var in maps.3.chunks(12) {
            let Some(var) = word(var, 0).and_then(|id| self.types.get(id as usize)) else {
                continue;
            };
            let Some(def) = self.resolve(var.2).filter(|t| t.0 == 4) else {
                continue;
            };
            let map_type = def.3.chunks(12).find_map(|m| {
                (self.name(word(m, 0)?) == "type").then_some(())?;
                let ptr = self.resolve(word(m, 4)?).filter(|t| t.0 == 2)?;
                let array = self.resolve(ptr.2).filter(|t| t.0 == 3)?;
                word(array.3, 8)
            });
            if let Some(t) = map_type {
                out.push((self.name(var.1).to_string(), t));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_the_run_found_moves_the_floor_up_and_only_once() {
        let mut f = ObjectFloor {
            object: "o".into(),
            floor: Some("5.5".into()),
            needs: vec![Need {
                feature: "fentry attachments".into(),
                since: "5.5".into(),
            }],
        };
        let module = Need {
            feature: "fentry on a module's function".into(),
            since: "5.11".into(),
        };
        f.add(module.clone());
        f.add(module);
        assert_eq!(f.floor.as_deref(), Some("5.11"));
        assert_eq!(f.needs.len(), 2);
        assert_eq!(f.place("5.10.0-46-cloud-amd64"), Some(FloorPlace::Below));
    }

    #[test]
    fn the_floor_is_the_newest_need_and_places_kernels() {
        let f = ObjectFloor {
            object: "o".into(),
            floor: Some("5.8".into()),
            needs: vec![
                Need {
                    feature: "ringbuf map `events`".into(),
                    since: "5.8".into(),
                },
                Need {
                    feature: "global variables".into(),
                    since: "5.2".into(),
                },
            ],
        };
        assert_eq!(f.place("5.4.0-216-generic"), Some(FloorPlace::Below));
        assert_eq!(
            f.place("5.10.0-46-cloud-amd64"),
            Some(FloorPlace::AtOrAbove)
        );
        assert_eq!(f.place("5.8.0"), Some(FloorPlace::AtOrAbove));
        assert_eq!(f.at_floor(), ["ringbuf map `events`"]);
        assert_eq!(newer_first("5.10", "5.8"), std::cmp::Ordering::Less);
    }

    #[test]
    fn a_tiny_object_needs_its_program_type() {
        let f = ObjectFloor::of("tiny", &crate::objects::tiny_object());
        assert_eq!(f.floor.as_deref(), Some("4.7"), "{f:?}");
        assert_eq!(f.needs[0].feature, "tracepoint programs");
        assert!(needs(b"not an object").is_empty());
    }
}
