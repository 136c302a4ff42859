//! The set of logical tables clients may use.

/// A table name that is in the configured set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client named a table the configuration does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown table {name:?}; allowed tables: {}", allowed.join(", "))]
pub struct UnknownTable {
    pub name: String,
    pub allowed: Vec<String>,
}

/// The allowed tables, from configuration.
#[derive(Debug, Clone)]
pub struct Tables {
    allowed: Vec<String>,
}

impl Tables {
    pub fn new(allowed: Vec<String>) -> Self {
        Self { allowed }
    }

    /// Parse, don't validate: only names in the configured set become a `TableName`.
    pub fn parse(&self, name: &str) -> Result<TableName, UnknownTable> {
        if self.allowed.iter().any(|t| t == name) {
            Ok(TableName(name.to_owned()))
        } else {
            Err(UnknownTable {
                name: name.chars().take(64).collect(),
                allowed: self.allowed.clone(),
            })
        }
    }

    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_tables_parse() {
        let t = Tables::new(vec!["users".into(), "orders".into()]);
        assert_eq!(t.parse("users").unwrap().as_str(), "users");
        let err = t.parse("secrets").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown table \"secrets\"; allowed tables: users, orders"
        );
    }
}
