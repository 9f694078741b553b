//! The OpenMetrics text format, written by hand into one `String`.
//!
//! Why not the `prometheus-client` crate (which rendered the scrape until 2026-12-04): it
//! encodes each series through layers of `dyn fmt::Write` calls — prefix, `_`, name,
//! suffix, each label name and value checked for escapes, every series again — which was
//! most of a scrape's CPU with 50,000 series. Here a series is a few `push_str`s: its
//! family's name, a label set rendered **once per object per scrape** (a partition's
//! `stream="…",partition="…"` serves all of its families), and the value through
//! `itoa`/`ryu`. The output is checked by a Prometheus text parser (`prometheus-parse`) in
//! `crates/http/tests/metrics.rs` and by the unit tests below.
//!
//! Format (OpenMetrics 1.0): each family is `# HELP`, `# TYPE`, then its samples, all
//! together; a counter's samples carry `_total`; a histogram's `_sum`, `_count` and
//! cumulative `_bucket{le="…"}` ending at `+Inf`; the text ends in `# EOF`.

/// The prefix of every metric name.
pub(super) const PREFIX: &str = "omnibus_";

/// The kind of a metric family, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A value a sample may carry.
pub(super) trait SampleValue: Copy {
    fn write(self, out: &mut String);
}

impl SampleValue for u64 {
    fn write(self, out: &mut String) {
        out.push_str(itoa::Buffer::new().format(self));
    }
}

impl SampleValue for f64 {
    fn write(self, out: &mut String) {
        if self.is_finite() {
            out.push_str(ryu::Buffer::new().format_finite(self));
        } else if self.is_nan() {
            out.push_str("NaN");
        } else if self > 0.0 {
            out.push_str("+Inf");
        } else {
            out.push_str("-Inf");
        }
    }
}

/// One scrape's text, written family after family.
pub(super) struct Exposition {
    out: String,
    /// The current family's sample name (`omnibus_<name>` plus `_total` for a counter).
    sample_name: String,
}

impl Exposition {
    pub(super) fn with_capacity(bytes: usize) -> Exposition {
        Exposition {
            out: String::with_capacity(bytes),
            sample_name: String::with_capacity(64),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `help` must be one line without
    /// `\` or `"` (ours are constants).
    pub(super) fn family(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(!help.contains(['\\', '"', '\n']), "{help}");
        for (line, text) in [("# HELP ", help), ("# TYPE ", kind.as_str())] {
            self.out.push_str(line);
            self.out.push_str(PREFIX);
            self.out.push_str(name);
            self.out.push(' ');
            self.out.push_str(text);
            self.out.push('\n');
        }
        self.sample_name.clear();
        self.sample_name.push_str(PREFIX);
        self.sample_name.push_str(name);
        if kind == Kind::Counter {
            self.sample_name.push_str("_total");
        }
    }

    /// One sample of the current family; `labels` is a rendered label set (see
    /// [`LabelSet`]) without braces, empty for none.
    pub(super) fn sample(&mut self, labels: &str, value: impl SampleValue) {
        self.out.push_str(&self.sample_name);
        self.labels_and_value(labels, "", value);
    }

    /// One sample with one more label after `labels` (`state="ready"`), already rendered.
    pub(super) fn sample_with(&mut self, labels: &str, extra: &str, value: impl SampleValue) {
        self.out.push_str(&self.sample_name);
        self.labels_and_value(labels, extra, value);
    }

    fn labels_and_value(&mut self, labels: &str, extra: &str, value: impl SampleValue) {
        if !labels.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(labels);
            if !labels.is_empty() && !extra.is_empty() {
                self.out.push(',');
            }
            self.out.push_str(extra);
            self.out.push('}');
        }
        self.out.push(' ');
        value.write(&mut self.out);
        self.out.push('\n');
    }

    /// A whole histogram family without labels. `buckets` are (upper bound, observations in
    /// that bucket alone), the last bound `+Inf`; the text's buckets are cumulative.
    pub(super) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        sum: f64,
        count: u64,
        buckets: &[(f64, u64)],
    ) {
        self.family(name, help, Kind::Histogram);
        for (suffix, write) in [("_sum", Some(sum)), ("_count", None)] {
            self.out.push_str(PREFIX);
            self.out.push_str(name);
            self.out.push_str(suffix);
            self.out.push(' ');
            match write {
                Some(sum) => sum.write(&mut self.out),
                None => count.write(&mut self.out),
            }
            self.out.push('\n');
        }
        let mut cumulative = 0u64;
        for (bound, observations) in buckets {
            cumulative += observations;
            self.out.push_str(PREFIX);
            self.out.push_str(name);
            self.out.push_str("_bucket{le=\"");
            bound.write(&mut self.out);
            self.out.push_str("\"} ");
            cumulative.write(&mut self.out);
            self.out.push('\n');
        }
    }

    /// Ends the text with `# EOF`.
    pub(super) fn finish(mut self) -> String {
        self.out.push_str("# EOF\n");
        self.out
    }
}

/// A label set rendered once (`stream="orders",partition="0"`), then borrowed by every
/// sample that carries it.
#[derive(Debug, Clone, Default)]
pub(super) struct LabelSet(String);

impl LabelSet {
    pub(super) fn new(pairs: &[(&str, &str)]) -> LabelSet {
        let mut set = LabelSet(String::with_capacity(
            pairs.iter().map(|(k, v)| k.len() + v.len() + 4).sum(),
        ));
        for (key, value) in pairs {
            set.push(key, value);
        }
        set
    }

    /// Appends `key="value"`, the value escaped as OpenMetrics asks (`\\`, `\"`, `\n`).
    pub(super) fn push(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        self.0.push_str(key);
        self.0.push_str("=\"");
        if value.contains(['\\', '"', '\n']) {
            for character in value.chars() {
                match character {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    other => self.0.push(other),
                }
            }
        } else {
            self.0.push_str(value);
        }
        self.0.push('"');
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms_are_written_as_openmetrics() {
        let mut text = Exposition::with_capacity(0);
        let labels = LabelSet::new(&[("stream", "orders"), ("partition", "0")]);
        text.family("stream_records_in", "Records in.", Kind::Counter);
        text.sample(labels.as_str(), 5u64);
        text.family("queue_depth", "Depth.", Kind::Gauge);
        text.sample_with(labels.as_str(), "state=\"ready\"", 2u64);
        text.sample_with("", "state=\"leased\"", 0.25f64);
        text.family("disk_free_bytes", "Free.", Kind::Gauge);
        text.sample("", 7u64);
        text.histogram(
            "fsync_seconds",
            "Fsyncs.",
            0.5,
            3,
            &[(0.001, 2), (f64::INFINITY, 1)],
        );
        assert_eq!(
            text.finish(),
            "# HELP omnibus_stream_records_in Records in.\n\
             # TYPE omnibus_stream_records_in counter\n\
             omnibus_stream_records_in_total{stream=\"orders\",partition=\"0\"} 5\n\
             # HELP omnibus_queue_depth Depth.\n\
             # TYPE omnibus_queue_depth gauge\n\
             omnibus_queue_depth{stream=\"orders\",partition=\"0\",state=\"ready\"} 2\n\
             omnibus_queue_depth{state=\"leased\"} 0.25\n\
             # HELP omnibus_disk_free_bytes Free.\n\
             # TYPE omnibus_disk_free_bytes gauge\n\
             omnibus_disk_free_bytes 7\n\
             # HELP omnibus_fsync_seconds Fsyncs.\n\
             # TYPE omnibus_fsync_seconds histogram\n\
             omnibus_fsync_seconds_sum 0.5\n\
             omnibus_fsync_seconds_count 3\n\
             omnibus_fsync_seconds_bucket{le=\"0.001\"} 2\n\
             omnibus_fsync_seconds_bucket{le=\"+Inf\"} 3\n\
             # EOF\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let labels = LabelSet::new(&[("queue", "a\"b\\c\nd"), ("door", "http")]);
        assert_eq!(labels.as_str(), "queue=\"a\\\"b\\\\c\\nd\",door=\"http\"");
    }
}
