"""Prometheus's own parsers (the prometheus_client package) read what `GET /metrics` serves:
the OpenMetrics parser, which is strict (types, `_total` suffixes, `# EOF`), and the classic
text parser Prometheus servers fall back to. The values read back are the traffic the test
made, so a series that is mis-encoded or mis-labelled fails here."""

from __future__ import annotations

import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from harness import http_json, unique, wait_until


def scrape(http: str) -> tuple[str, str]:
    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as response:
        return response.headers["content-type"], response.read().decode()


def samples(text: str, parser) -> dict:
    found = {}
    for family in parser(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_scrape_parses_with_prometheus_parsers_and_counts_the_traffic(broker):
    stream = unique("scraped")
    broker.create_stream(stream, 2)
    broker.publish(stream, [{"key": f"k{i}", "value": f"v{i}"} for i in range(10)])
    queue = unique("scraped-jobs")
    http_json("POST", f"{broker.http}/v1/queues", {"name": queue})
    for i in range(3):
        http_json("POST", f"{broker.http}/v1/queues/{queue}/messages", {"value": f"job {i}"})

    content_type, text = scrape(broker.http)
    assert content_type.startswith("application/openmetrics-text"), content_type
    assert text.endswith("# EOF\n")
    strict = samples(text, parse_openmetrics)
    assert strict, "the OpenMetrics parser found no samples"

    published = sum(
        value
        for (name, labels), value in strict.items()
        if name == "omnibus_stream_records_in_total" and ("stream", stream) in labels
    )
    assert published == 10, [k for k in strict if k[0].startswith("omnibus_stream_records_in")]
    depth = strict[("omnibus_queue_depth", (("queue", queue), ("state", "ready")))]
    assert depth == 3
    enqueued = strict[("omnibus_queue_messages_total", (("event", "enqueued"), ("queue", queue)))]
    assert enqueued == 3

    # The classic text format parser reads the same body to the same values (its counter
    # names keep `_total`, as OpenMetrics' samples do).
    classic = samples(text.removesuffix("# EOF\n"), parse_text)
    for key in [
        ("omnibus_queue_depth", (("queue", queue), ("state", "ready"))),
        ("omnibus_queue_messages_total", (("event", "enqueued"), ("queue", queue))),
    ]:
        assert classic[key] == strict[key], key

    # Histograms keep their buckets ordered and ending in +Inf, as the strict parser demands
    # (it raised above otherwise); the fsync histogram counted the publishes' fsyncs.
    wait_until(
        lambda: samples(scrape(broker.http)[1], parse_openmetrics).get(("omnibus_fsync_seconds_count", ()), 0) > 0,
        10,
        "a counted fsync",
    )
