//! The options and outcomes of the keyspace's string and key commands (SET's conditions
//! and expiry, EXPIRE's conditions, TTL, INCRBY), as the doors pass and read them.

use bytes::Bytes;

/// When a write applies (SET's NX / XX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    IfAbsent,
    IfPresent,
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// No deadline (a plain SET clears the old one).
    #[default]
    Clear,
    /// Keeps the deadline the key had (SET KEEPTTL).
    Keep,
    /// Expires at this Unix time in milliseconds.
    At(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    pub condition: SetCondition,
    pub expiry: SetExpiry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was written (false: NX or XX said no).
    pub written: bool,
    /// The value before, whether or not it was written.
    pub old: Option<Bytes>,
}

/// When EXPIRE applies (its NX / XX / GT / LT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    #[default]
    Always,
    /// Only when the key has no deadline.
    IfNone,
    /// Only when the key has one.
    IfSome,
    /// Only when the new deadline is later (no deadline counts as infinitely late).
    IfLater,
    /// Only when the new deadline is earlier.
    IfEarlier,
    /// Only when the key has a deadline and the new one is earlier (XX with LT; XX with GT
    /// is [`ExpireCondition::IfLater`], which no deadline never passes).
    IfSomeAndEarlier,
}

impl ExpireCondition {
    /// Whether a key whose deadline is `current` takes `new` (`None`: PERSIST) under this
    /// condition, as Redis decides: no deadline counts as infinitely late, and clearing a
    /// deadline the key does not have changes nothing.
    pub fn allows(self, current: Option<i64>, new: Option<i64>) -> bool {
        let allowed = match (self, current, new) {
            (ExpireCondition::Always, _, _) => true,
            (ExpireCondition::IfNone, current, _) => current.is_none(),
            (ExpireCondition::IfSome, current, _) => current.is_some(),
            (ExpireCondition::IfLater, None, _) => false,
            (ExpireCondition::IfLater, Some(current), Some(new)) => new > current,
            (ExpireCondition::IfEarlier, None, Some(_)) => true,
            (ExpireCondition::IfEarlier, Some(current), Some(new)) => new < current,
            (ExpireCondition::IfSomeAndEarlier, None, _) => false,
            (ExpireCondition::IfSomeAndEarlier, Some(current), Some(new)) => new < current,
            (_, _, None) => false,
        };
        allowed && (new.is_some() || current.is_some())
    }
}

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeToLive {
    Missing,
    Forever,
    Milliseconds(i64),
}

/// What INCRBY found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    Value(i64),
    NotAnInteger,
    Overflow,
}

/// What INCRBYFLOAT / HINCRBYFLOAT found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloatIncrement {
    /// The new value, as stored and answered.
    Value(Bytes),
    /// The value held is not a number.
    NotAFloat,
    /// The sum is NaN or infinite.
    NotFinite,
}

#[cfg(test)]
mod tests {
    use super::ExpireCondition::*;

    #[test]
    fn expire_conditions_decide_as_redis_does() {
        // NX / XX look only at whether there is a deadline.
        assert!(IfNone.allows(None, Some(5)));
        assert!(!IfNone.allows(Some(9), Some(5)));
        assert!(IfSome.allows(Some(9), Some(5)));
        assert!(!IfSome.allows(None, Some(5)));
        // No deadline is infinitely late: GT never passes it, LT always does.
        assert!(!IfLater.allows(None, Some(5)));
        assert!(IfLater.allows(Some(4), Some(5)));
        assert!(!IfLater.allows(Some(5), Some(5)));
        assert!(IfEarlier.allows(None, Some(5)));
        assert!(!IfEarlier.allows(Some(5), Some(6)));
        // PERSIST changes something only when there is a deadline to clear.
        assert!(Always.allows(Some(5), None));
        assert!(!Always.allows(None, None));
        assert!(!IfLater.allows(Some(5), None));
    }
}
