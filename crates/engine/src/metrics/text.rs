//! The OpenMetrics text of a scrape, written by the `prometheus-client` crate's encoder.
//!
//! The crate's usual model — metric objects registered once and read at each scrape — does
//! not fit here: our gauges are computed at scrape time from the engine's own state, for
//! objects (partitions, groups, queues) that come and go. So a scrape registers one
//! [`prometheus_client::collector::Collector`] (`collect.rs`) that walks the engine and
//! hands each family to the crate's `DescriptorEncoder` through [`Exposition`]; the crate
//! writes `# HELP` / `# TYPE`, names (`omnibus_` prefix, `_total` for counters, `_sum` /
//! `_count` / `_bucket` for histograms), escapes label values, formats numbers and ends the
//! text with `# EOF`. What keeps a scrape cheap is ours: each object is read once and its
//! label set built once per scrape, and series that say nothing are left out
//! (docs/operations.md, "How it stays cheap").
//!
//! The output is checked by Prometheus's own parsers (`tests/clients/test_prometheus.py`),
//! by `prometheus-parse` in `crates/http/tests/metrics.rs`, and by the unit tests below.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, LabelSetEncoder,
    MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

/// The prefix of every metric name (`omnibus_…`).
pub(super) const PREFIX: &str = "omnibus";

/// The kind of a metric family, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// A value a sample may carry: a whole count or a float (ages, seconds).
pub(super) trait SampleValue: EncodeCounterValue + EncodeGaugeValue + Copy {}

impl SampleValue for u64 {}
impl SampleValue for f64 {}

/// One scrape's families, written in order through the crate's encoder. Writing into a
/// `String` cannot fail, but the crate's API returns `fmt::Result`: the first error is kept
/// and returned by [`Exposition::finish`].
pub(super) struct Exposition<'a> {
    encoder: DescriptorEncoder<'a>,
    result: fmt::Result,
}

impl<'a> Exposition<'a> {
    pub(super) fn new(encoder: DescriptorEncoder<'a>) -> Exposition<'a> {
        Exposition {
            encoder,
            result: Ok(()),
        }
    }

    /// One family: its `# HELP` and `# TYPE` lines, then the samples `samples` writes (none
    /// is fine: the family is still announced). `help` must be one line without `\` or `"`
    /// (ours are constants; the crate writes help text as it is).
    pub(super) fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        samples: impl FnOnce(&mut Family<'_>),
    ) {
        debug_assert!(!help.contains(['\\', '"', '\n']), "{help}");
        if self.result.is_err() {
            return;
        }
        let metric_type = match kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
        };
        match self
            .encoder
            .encode_descriptor(name, help, None, metric_type)
        {
            Ok(metric) => {
                let mut family = Family {
                    metric,
                    kind,
                    result: Ok(()),
                };
                samples(&mut family);
                self.result = family.result;
            }
            Err(error) => self.result = Err(error),
        }
    }

    /// A whole histogram family without labels. `buckets` are (upper bound, observations in
    /// that bucket alone), the last bound `+Inf`; the crate writes them cumulative.
    pub(super) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        sum: f64,
        count: u64,
        buckets: &[(f64, u64)],
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)
            .and_then(|mut metric| {
                metric.encode_histogram::<NoLabelSet>(sum, count, buckets, None)
            });
    }

    /// The first error the encoder returned, if any.
    pub(super) fn finish(self) -> fmt::Result {
        self.result
    }
}

/// The samples of one family.
pub(super) struct Family<'a> {
    metric: MetricEncoder<'a>,
    kind: Kind,
    result: fmt::Result,
}

impl Family<'_> {
    /// One sample without labels.
    pub(super) fn value(&mut self, value: impl SampleValue) {
        self.write(&LabelSet::default(), value);
    }

    /// One sample carrying `labels`.
    pub(super) fn sample(&mut self, labels: &LabelSet, value: impl SampleValue) {
        self.write(labels, value);
    }

    /// One sample carrying `labels` and one more label after them (`state="ready"`).
    pub(super) fn sample_with(
        &mut self,
        labels: &LabelSet,
        extra: (&'static str, &'static str),
        value: impl SampleValue,
    ) {
        self.write(&WithExtra(labels, extra), value);
    }

    fn write(&mut self, labels: &impl EncodeLabelSet, value: impl SampleValue) {
        if self.result.is_err() {
            return;
        }
        let kind = self.kind;
        self.result = self
            .metric
            .encode_family(labels)
            .and_then(|mut sample| match kind {
                Kind::Counter => sample.encode_counter::<NoLabelSet, _, u64>(&value, None),
                Kind::Gauge => sample.encode_gauge(&value),
            });
    }
}

/// An object's labels (`stream="orders",partition="0"`), built once per scrape and borrowed
/// by every sample of the object. Keys are our constants; values are escaped by the crate.
#[derive(Debug, Clone, Default)]
pub(super) struct LabelSet(Vec<(&'static str, String)>);

impl LabelSet {
    pub(super) fn new(pairs: &[(&'static str, &str)]) -> LabelSet {
        LabelSet(
            pairs
                .iter()
                .map(|(key, value)| (*key, (*value).to_owned()))
                .collect(),
        )
    }
}

impl EncodeLabelSet for LabelSet {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        self.0.as_slice().encode(encoder)
    }
}

/// A label set and one more label.
struct WithExtra<'a>(&'a LabelSet, (&'static str, &'static str));

impl EncodeLabelSet for WithExtra<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        self.0.encode(encoder)?;
        [self.1].encode(encoder)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    use super::*;

    /// Writes a few families of each kind.
    #[derive(Debug)]
    struct Example;

    impl Collector for Example {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            let mut text = Exposition::new(encoder);
            let labels = LabelSet::new(&[("stream", "orders"), ("partition", "0")]);
            text.family("stream_records_in", "Records in.", Kind::Counter, |f| {
                f.sample(&labels, 5u64)
            });
            text.family("queue_depth", "Depth.", Kind::Gauge, |f| {
                f.sample_with(&labels, ("state", "ready"), 2u64);
                f.sample_with(&LabelSet::default(), ("state", "leased"), 0.25f64);
            });
            text.family("empty", "Nothing yet.", Kind::Gauge, |_| {});
            text.family("disk_free_bytes", "Free.", Kind::Gauge, |f| f.value(7u64));
            text.histogram(
                "fsync_seconds",
                "Fsyncs.",
                0.5,
                3,
                &[(0.001, 2), (f64::INFINITY, 1)],
            );
            text.finish()
        }
    }

    fn scrape(collector: impl Collector) -> String {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(collector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn families_samples_and_histograms_are_written_as_openmetrics() {
        assert_eq!(
            scrape(Example),
            "# HELP omnibus_stream_records_in Records in.\n\
             # TYPE omnibus_stream_records_in counter\n\
             omnibus_stream_records_in_total{stream=\"orders\",partition=\"0\"} 5\n\
             # HELP omnibus_queue_depth Depth.\n\
             # TYPE omnibus_queue_depth gauge\n\
             omnibus_queue_depth{stream=\"orders\",partition=\"0\",state=\"ready\"} 2\n\
             omnibus_queue_depth{state=\"leased\"} 0.25\n\
             # HELP omnibus_empty Nothing yet.\n\
             # TYPE omnibus_empty gauge\n\
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

    #[derive(Debug)]
    struct Escaped;

    impl Collector for Escaped {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            let mut text = Exposition::new(encoder);
            let labels = LabelSet::new(&[("queue", "a\"b\\c\nd"), ("door", "http")]);
            text.family("requests", "Requests.", Kind::Counter, |f| {
                f.sample(&labels, 1u64)
            });
            text.finish()
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert!(scrape(Escaped)
            .contains("omnibus_requests_total{queue=\"a\\\"b\\\\c\\nd\",door=\"http\"} 1\n"));
    }
}
