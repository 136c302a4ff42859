//! What one answer made of many point reads may hold (`POST /api/read-many`): the
//! records found, each counted as often as it is asked (a record asked twice is sent
//! twice), within the gateway's read budget (`server.max_read_bytes`, the bound of a
//! list's page). An answer past it is refused, not cut: its reads are asked again in
//! smaller requests. One record asked once is always answered, whatever its size, as
//! `GET /api/read` answers it.
//!
//! The reads are made a few at a time ([`WAVE`] records in flight per shard), and
//! the count is kept as they come back, so an answer refused holds at most the budget
//! and one wave in memory, never every record asked.

/// Reads an answer may have in flight at once, per shard.
pub const WAVE: usize = 8;

/// The running total of one answer of many reads.
#[derive(Debug, Clone)]
pub struct AnswerBudget {
    max_bytes: usize,
    used: usize,
    /// How many times each distinct read is asked.
    asked: Vec<usize>,
}

/// An answer that would pass its budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the records these reads find come to more than {max_bytes} bytes (server.max_read_bytes), each counted as often as it is asked; read {index} passed it; ask fewer reads, or each record once, per request")]
pub struct OverBudget {
    pub max_bytes: usize,
    /// The read (its position among the distinct reads) whose record passed it.
    pub index: usize,
}

impl AnswerBudget {
    /// A budget of `max_bytes` for distinct reads asked `asked[i]` times each.
    pub fn new(max_bytes: usize, asked: Vec<usize>) -> Self {
        Self {
            max_bytes,
            used: 0,
            asked,
        }
    }

    /// Counts distinct read `index`'s record of `bytes`; refuses once the answer would
    /// pass the budget (unless it is one record asked once).
    pub fn admit(&mut self, index: usize, bytes: usize) -> Result<(), OverBudget> {
        let times = self.asked.get(index).copied().unwrap_or(1);
        self.used = self.used.saturating_add(bytes.saturating_mul(times));
        let alone = self.asked.len() == 1 && times == 1;
        match self.used > self.max_bytes && !alone {
            true => Err(OverBudget {
                max_bytes: self.max_bytes,
                index,
            }),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_count_as_often_as_they_are_asked() {
        let mut budget = AnswerBudget::new(1_000, vec![3, 1]);
        assert_eq!(budget.admit(1, 400), Ok(()));
        // 400 + 3 × 300 = 1,300: past the budget, though each record fits.
        assert_eq!(
            budget.admit(0, 300),
            Err(OverBudget {
                max_bytes: 1_000,
                index: 0
            })
        );
    }

    #[test]
    fn one_record_asked_once_is_always_answered() {
        let mut budget = AnswerBudget::new(10, vec![1]);
        assert_eq!(budget.admit(0, 1_000_000), Ok(()));
        // Asked twice, it is held to the budget.
        let mut twice = AnswerBudget::new(10, vec![2]);
        assert!(twice.admit(0, 1_000).is_err());
    }

    #[test]
    fn reads_within_the_budget_pass() {
        let mut budget = AnswerBudget::new(1_000, vec![1, 1, 2]);
        for (i, bytes) in [(0, 300), (1, 300), (2, 200)] {
            assert_eq!(budget.admit(i, bytes), Ok(()));
        }
        assert!(budget.admit(2, 1).is_err());
    }
}
