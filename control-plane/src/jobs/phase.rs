//! A job's phases: each kind names its own and declares which may follow which, in one
//! table (`phases!`); every kind ends in `done` or `aborted` (the tables' partial
//! indexes of active jobs name those two). Pure.

use std::fmt::Debug;

/// The phases of one kind of job, as a state machine.
pub trait JobPhase: Copy + Eq + Debug + Send + Sync + 'static {
    /// Every phase, in the order a job goes through them.
    const ALL: &'static [Self];
    /// Where a new job is recorded.
    const FIRST: Self;
    /// Finished: every step done.
    const DONE: Self;
    /// Finished: rolled back.
    const ABORTED: Self;

    /// As the `phase` column stores it.
    fn as_str(self) -> &'static str;

    /// The phases a job may go to from this one, besides staying (a step recorded again
    /// by a resumed run) and `aborted` (from any active phase).
    fn next(self) -> &'static [Self];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == text)
    }

    /// Not finished: the job still holds what it works on.
    fn active(self) -> bool {
        self != Self::DONE && self != Self::ABORTED
    }

    /// Whether a job in this phase may be recorded in `to`: a finished job never
    /// changes again.
    fn may_become(self, to: Self) -> bool {
        self.active() && (to == self || to == Self::ABORTED || self.next().contains(&to))
    }
}

/// Declares a kind's phase enum and its state machine: each phase with its stored
/// name and the phases that may follow it. Generates the enum, its [`JobPhase`] impl,
/// and `as_str`, `parse`, `active` and `ALL` as inherent items (callers need no trait
/// in scope).
macro_rules! phases {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal => [$($next:ident),*]
            ),+ $(,)?
        }
        first: $first:ident, done: $done:ident, aborted: $aborted:ident $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::jobs::JobPhase for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            const FIRST: Self = $name::$first;
            const DONE: Self = $name::$done;
            const ABORTED: Self = $name::$aborted;

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            fn next(self) -> &'static [Self] {
                match self {
                    $($name::$variant => &[$($name::$next),*]),+
                }
            }
        }

        impl $name {
            /// Every phase, in order.
            pub const ALL: &'static [Self] = <Self as $crate::jobs::JobPhase>::ALL;

            /// As the `phase` column stores it.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::jobs::JobPhase>::as_str(self)
            }

            pub fn parse(text: &str) -> Option<Self> {
                <Self as $crate::jobs::JobPhase>::parse(text)
            }

            /// Not finished (neither done nor aborted).
            pub fn active(self) -> bool {
                <Self as $crate::jobs::JobPhase>::active(self)
            }
        }
    };
}

pub(crate) use phases;

#[cfg(test)]
mod tests {
    use super::JobPhase;
    use crate::jobs::test_kind::Step;

    #[test]
    fn names_round_trip_and_only_done_and_aborted_are_final() {
        for p in Step::ALL {
            assert_eq!(Step::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Step::parse("finished"), None);
        let active: Vec<_> = Step::ALL.iter().filter(|p| p.active()).collect();
        assert_eq!(active, [&Step::Queued, &Step::Working, &Step::Fenced]);
    }

    #[test]
    fn a_job_goes_forward_as_declared_falls_back_where_allowed_and_ends_once() {
        use Step::*;
        assert!(Queued.may_become(Working));
        assert!(!Queued.may_become(Fenced), "no skipping ahead");
        assert!(Fenced.may_become(Working), "declared fall-back");
        assert!(!Working.may_become(Queued), "undeclared fall-back");
        assert!(
            Working.may_become(Working),
            "a resumed run records its step again"
        );
        for from in [Queued, Working, Fenced] {
            assert!(from.may_become(Aborted), "{from:?} can be aborted");
        }
        assert!(Fenced.may_become(Done) && !Working.may_become(Done));
        for from in [Done, Aborted] {
            for to in Step::ALL {
                assert!(!from.may_become(*to), "{from:?} is final, not {to:?}");
            }
        }
    }
}
