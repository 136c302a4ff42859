//! One request of the fuzz run, and the real values the fixture knows.

/// Values the fixture knows to be real: a stored record's key and id, an allowed table,
/// a cursor and a write token the gateway handed out.
pub struct Known {
    pub values: Vec<(&'static str, String)>,
}

impl Known {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a case's answer must be besides matching the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Built from the documentation only: the gateway must accept it (2xx).
    Success,
    /// Breaks a documented requirement: the gateway must refuse it (4xx).
    ClientError,
    /// Anything the document allows.
    Documented,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Case {
    /// What was done to the request, for the report.
    pub label: String,
    pub method: String,
    /// The path as the document names it.
    pub path: String,
    /// `name=value` pairs, already percent-encoded.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Content type (if any) and bytes.
    pub body: Option<(Option<String>, Vec<u8>)>,
    /// False for a method the path does not document.
    pub documented: bool,
    pub expect: Expect,
}

impl Case {
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}
