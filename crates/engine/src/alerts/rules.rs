//! The rule model's checks, the rules on by default, and target globs.

use super::{AlertKind, AlertRule, LagUnit, RuleSource};

/// Most rules created over the API (config rules are bounded by the config file's size).
pub const RULES_MAX: usize = 256;
/// Longest rule name; names are `[A-Za-z0-9_.-]`, so `<rule>:<target>` ids split at the
/// first colon.
pub const RULE_NAME_BYTES_MAX: usize = 64;
/// Longest target glob.
pub const TARGET_BYTES_MAX: usize = 512;
/// Longest `for_seconds`: a week.
pub const FOR_SECONDS_MAX: u64 = 7 * 24 * 3600;

/// The rules on without any configuration: a dead-letter queue that receives anything, a
/// data folder under 10 % free, any partition or queue poisoned by an I/O error, and a
/// keyspace past 90 % of its byte bound (its writes are refused at 100 %).
pub fn default_rules() -> Vec<AlertRule> {
    let rule = |name: &str, kind, threshold| AlertRule {
        name: name.to_string(),
        kind,
        target: None,
        threshold,
        for_seconds: 0,
        enabled: true,
        source: RuleSource::Default,
        unit: None,
        growing: false,
    };
    vec![
        rule("dlq_not_empty", AlertKind::DlqDepth, 0.0),
        rule("disk_free_low", AlertKind::DiskFree, 10.0),
        rule("io_poisoned", AlertKind::IoPoisoned, 0.0),
        rule("keyspace_nearly_full", AlertKind::KeyspaceUsed, 90.0),
    ]
}

/// Why `rule` is invalid, in one sentence naming the field.
pub fn validate_rule(rule: &AlertRule) -> Result<(), String> {
    let name = &rule.name;
    if name.is_empty() || name.len() > RULE_NAME_BYTES_MAX {
        return Err(format!(
            "rule name must be 1 to {RULE_NAME_BYTES_MAX} bytes, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "rule name {name:?} may only hold letters, digits, '_', '-' and '.', not {bad:?}"
        ));
    }
    if let Some(target) = &rule.target {
        if target.is_empty() || target.len() > TARGET_BYTES_MAX {
            return Err(format!(
                "rule {name:?}: target must be 1 to {TARGET_BYTES_MAX} bytes (or null for all)"
            ));
        }
        if target.chars().any(char::is_control) {
            return Err(format!(
                "rule {name:?}: target contains a control character"
            ));
        }
    }
    if !rule.threshold.is_finite() || rule.threshold < 0.0 {
        return Err(format!(
            "rule {name:?}: threshold must be a finite number at least 0, got {}",
            rule.threshold
        ));
    }
    match rule.kind {
        AlertKind::DiskFree | AlertKind::KeyspaceUsed
            if !(rule.threshold > 0.0 && rule.threshold <= 100.0) =>
        {
            return Err(format!(
                "rule {name:?}: a {} threshold is a percentage above 0 and at most 100, got {}",
                rule.kind.as_str(),
                rule.threshold
            ));
        }
        AlertKind::IoPoisoned if rule.threshold != 0.0 => {
            return Err(format!(
                "rule {name:?}: an io_poisoned rule fires on any poisoned target; its threshold must be 0"
            ));
        }
        _ => {}
    }
    if rule.unit.is_some() && rule.kind != AlertKind::ConsumerLag {
        return Err(format!(
            "rule {name:?}: unit applies to consumer_lag rules only, not {}",
            rule.kind.as_str()
        ));
    }
    if rule.growing && rule.kind != AlertKind::DlqDepth {
        return Err(format!(
            "rule {name:?}: growing applies to dlq_depth rules only, not {}",
            rule.kind.as_str()
        ));
    }
    if rule.growing && rule.for_seconds == 0 {
        return Err(format!(
            "rule {name:?}: a growing rule needs for_seconds, the window its growth is measured over"
        ));
    }
    if rule.for_seconds > FOR_SECONDS_MAX {
        return Err(format!(
            "rule {name:?}: for_seconds must be at most {FOR_SECONDS_MAX}, got {}",
            rule.for_seconds
        ));
    }
    Ok(())
}

/// The unit an observation of `rule`'s kind must carry to be judged by it.
pub(crate) fn rule_unit(rule: &AlertRule) -> Option<LagUnit> {
    match rule.kind {
        AlertKind::ConsumerLag => Some(rule.unit.unwrap_or_default()),
        _ => None,
    }
}

/// Whether `text` matches `pattern`: `*` stands for any text (also none), `?` for one
/// character, everything else for itself. Linear in practice: the classic backtracking
/// matcher that remembers only the last `*`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}
