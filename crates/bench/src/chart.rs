//! `chart.svg`, written by hand: one group per (workload, size); in each group one row per
//! system with a throughput bar (its min–max spread as a whisker) and, where the workload
//! measured latency, a p50 bar with a p99 dot. Each group has its own scales, because systems
//! are compared within a workload, never across workloads.

use crate::report::{group_digits, Summary};

const WIDTH: f64 = 1010.0;
const LABEL_WIDTH: f64 = 150.0;
const PANEL_WIDTH: f64 = 300.0;
/// Room for the throughput figure after its bar.
const LATENCY_LEFT: f64 = LABEL_WIDTH + PANEL_WIDTH + 130.0;
const LATENCY_WIDTH: f64 = 220.0;
const ROW_HEIGHT: f64 = 22.0;
const GROUP_HEADING_HEIGHT: f64 = 30.0;
const GROUP_GAP: f64 = 14.0;
const TOP: f64 = 46.0;

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The groups in first-seen order, each with its rows.
fn groups(summaries: &[Summary]) -> Vec<(String, Vec<&Summary>)> {
    let mut groups: Vec<(String, Vec<&Summary>)> = Vec::new();
    for summary in summaries {
        let title = format!("{}, {} B", summary.workload, summary.size_bytes);
        match groups.iter_mut().find(|(existing, _)| *existing == title) {
            Some((_, rows)) => rows.push(summary),
            None => groups.push((title, vec![summary])),
        }
    }
    groups
}

pub fn svg(summaries: &[Summary]) -> String {
    let groups = groups(summaries);
    let height = TOP
        + groups
            .iter()
            .map(|(_, rows)| GROUP_HEADING_HEIGHT + rows.len() as f64 * ROW_HEIGHT + GROUP_GAP)
            .sum::<f64>()
        + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">Throughput (median, \
         min–max whisker) and latency (p50 bar, p99 dot)</text>\n\
         <text x=\"{LABEL_WIDTH}\" y=\"36\" fill=\"#555\">messages (jobs, round trips) per second</text>\n\
         <text x=\"{LATENCY_LEFT}\" y=\"36\" fill=\"#555\">latency, µs</text>\n"
    );
    let mut y = TOP;
    for (title, rows) in &groups {
        y = group(&mut out, title, rows, y);
    }
    out.push_str("</svg>\n");
    out
}

/// Draws one group from `top`; returns where the next group starts.
fn group(out: &mut String, title: &str, rows: &[&Summary], top: f64) -> f64 {
    out.push_str(&format!(
        "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\n",
        top + 16.0,
        escape(title)
    ));
    let throughput_max = rows
        .iter()
        .map(|row| row.per_second_max.max(row.per_second_median))
        .fold(0.0, f64::max)
        .max(1.0);
    let latency_max = rows
        .iter()
        .filter_map(|row| row.p99_micros_median.or(row.p50_micros_median))
        .fold(0.0, f64::max);
    let mut y = top + GROUP_HEADING_HEIGHT;
    for row in rows {
        let middle = y + ROW_HEIGHT / 2.0;
        out.push_str(&format!(
            "<text x=\"10\" y=\"{:.1}\">{}</text>\n",
            middle + 4.0,
            escape(&row.system)
        ));
        let scale = PANEL_WIDTH / throughput_max;
        let bar = row.per_second_median * scale;
        out.push_str(&format!(
            "<rect class=\"throughput\" x=\"{LABEL_WIDTH}\" y=\"{:.1}\" width=\"{bar:.1}\" \
             height=\"{:.1}\" fill=\"#3b6ea8\"><title>{} {}/s</title></rect>\n",
            y + 3.0,
            ROW_HEIGHT - 6.0,
            escape(&row.system),
            group_digits(row.per_second_median),
        ));
        out.push_str(&format!(
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{middle:.1}\" y2=\"{middle:.1}\" \
             stroke=\"black\"/>\n",
            LABEL_WIDTH + row.per_second_min * scale,
            LABEL_WIDTH + row.per_second_max * scale,
        ));
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}/s</text>\n",
            LABEL_WIDTH + PANEL_WIDTH + 6.0,
            middle + 4.0,
            group_digits(row.per_second_median)
        ));
        if latency_max > 0.0 {
            latency(out, row, latency_max, y, middle);
        }
        y += ROW_HEIGHT;
    }
    y + GROUP_GAP
}

fn latency(out: &mut String, row: &Summary, latency_max: f64, y: f64, middle: f64) {
    let scale = LATENCY_WIDTH / latency_max;
    if let Some(p50) = row.p50_micros_median {
        out.push_str(&format!(
            "<rect class=\"p50\" x=\"{LATENCY_LEFT}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" fill=\"#8fb573\"/>\n",
            y + 5.0,
            p50 * scale,
            ROW_HEIGHT - 10.0,
        ));
    }
    if let Some(p99) = row.p99_micros_median {
        out.push_str(&format!(
            "<circle class=\"p99\" cx=\"{:.1}\" cy=\"{middle:.1}\" r=\"4\" fill=\"#c0392b\"/>\n",
            LATENCY_LEFT + p99 * scale,
        ));
    }
    let text = match (row.p50_micros_median, row.p99_micros_median) {
        (Some(p50), Some(p99)) => {
            format!("p50 {} µs, p99 {} µs", group_digits(p50), group_digits(p99))
        }
        _ => String::new(),
    };
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
        LATENCY_LEFT + LATENCY_WIDTH + 12.0,
        middle + 4.0,
        text
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_records, summarize, tests::FIXED_JSONL};

    #[test]
    fn the_chart_has_a_throughput_bar_per_system_and_latency_where_measured() {
        let summaries = summarize(&parse_records(FIXED_JSONL).expect("valid records"));
        let chart = svg(&summaries);
        assert!(chart.starts_with("<svg"));
        assert!(chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("class=\"throughput\"").count(), 2);
        assert!(chart.contains("<title>omnibus-http 12,500/s</title>"));
        assert!(chart.contains("<title>redis 7,500/s</title>"));
        // Only the Redis publish runs measured latency.
        assert_eq!(chart.matches("class=\"p50\"").count(), 1);
        assert_eq!(chart.matches("class=\"p99\"").count(), 1);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
