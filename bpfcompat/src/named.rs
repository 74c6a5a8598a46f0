//! Enums a person chooses by name (`--mode fire`, `--accel tcg`): one table
//! per enum gives its names and values, for parsing and for listing.

/// An enum chosen by name.
pub trait Named: Copy + 'static {
    /// What a value is, for errors (`mode`, `accelerator`).
    const WHAT: &'static str;
    /// Every value by name, in the order help lists them.
    const TABLE: &'static [(&'static str, Self)];

    /// The name of a value, as it is chosen (`attach`).
    fn name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::TABLE
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }

    /// The names, in table order.
    fn names() -> Vec<&'static str> {
        Self::TABLE.iter().map(|(n, _)| *n).collect()
    }

    /// The value called `s`; the error lists the names.
    fn by_name(s: &str) -> Result<Self, UnknownName> {
        Self::TABLE
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                given: s.to_string(),
                names: Self::names(),
            })
    }
}

/// A name no value of an enum has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What a value is (`mode`).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The names there are.
    pub names: Vec<&'static str>,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not a {} ({})",
            self.given,
            self.what,
            self.names.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}
