//! Enums a person chooses by name (`--mode fire`, `--accel tcg`): one table
//! per enum gives its names and values, for parsing and for listing.

/// An enum chosen by name.
pub trait Named: Copy + 'static {
    /// What a value is, for errors (`mode`, `accelerator`).
    const WHAT: &'static str;
    /// Every value by name, in the order help lists them.
    const TABLE: &'static [(&'static str, Self)];

    /// The names, in table order.
    fn names() -> Vec<&'static str> {
        Self::TABLE.iter().map(|(n, _)| *n).collect()
    }

    /// The value called `s`; the error lists the names.
    fn by_name(s: &str) -> Result<Self, String> {
        Self::TABLE
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a {} ({})",
                    Self::WHAT,
                    Self::names().join(", ")
                )
            })
    }
}
