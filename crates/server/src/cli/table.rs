//! Plain-text tables for the list commands: columns padded to their widest cell, numbers
//! right-aligned so magnitudes line up, two spaces between columns, no trailing blanks.
//! Also the one printer of the list commands (`job list`, `dlq list`): a table or JSON lines.

use std::io::Write;

use clap::ValueEnum;
use serde::de::DeserializeOwned;

/// How a list command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// Prints `items` (as the server sent them) to stdout: one JSON line each, or a table of
/// their rows (an item that does not read as a row prints as an empty one).
pub fn print_list<Row: DeserializeOwned + Default>(
    items: &[serde_json::Value],
    format: ListFormat,
    table: impl Fn(&[Row]) -> String,
) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            for item in items {
                serde_json::to_writer(&mut stdout, item)?;
                stdout.write_all(b"\n")?;
            }
        }
        ListFormat::Table => {
            let rows: Vec<Row> = items
                .iter()
                .map(|item| serde_json::from_value(item.clone()).unwrap_or_default())
                .collect();
            stdout.write_all(table(&rows).as_bytes())?;
        }
    }
    stdout.flush()
}

/// Renders `header` and `rows`; `right_aligned[i]` says how column `i` is aligned. An empty
/// cell prints as `-` so every row still splits into the same number of words (as long as
/// the cells themselves have no spaces).
pub fn render_table(
    header: &[String],
    right_aligned: &[bool],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> String {
    assert_eq!(
        header.len(),
        right_aligned.len(),
        "one alignment per column"
    );
    let mut lines: Vec<Vec<String>> = vec![header.to_vec()];
    for mut row in rows {
        assert_eq!(row.len(), header.len(), "one cell per column");
        for cell in &mut row {
            if cell.is_empty() {
                cell.push('-');
            }
        }
        lines.push(row);
    }
    let mut widths = vec![0usize; header.len()];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for line in &lines {
        let mut text = String::new();
        for (column, cell) in line.iter().enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            let width = widths[column];
            if right_aligned[column] {
                text.push_str(&format!("{cell:>width$}"));
            } else {
                text.push_str(&format!("{cell:<width$}"));
            }
        }
        table.push_str(text.trim_end());
        table.push('\n');
    }
    table
}

/// `text` on one line and at most `chars_max` characters, for a free-text cell.
pub fn one_line(text: &str, chars_max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= chars_max {
        return flat;
    }
    let mut cut: String = flat.chars().take(chars_max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_empty_cells_shown_as_a_dash() {
        let header = ["A".to_string(), "NUMBER".to_string(), "TEXT".to_string()];
        let rows = vec![
            vec!["long-name".into(), "7".into(), "".into()],
            vec!["x".into(), "1234567".into(), "two words".into()],
        ];
        let expected = "\
A           NUMBER  TEXT
long-name        7  -
x          1234567  two words
";
        assert_eq!(render_table(&header, &[false, true, false], rows), expected);
    }

    #[test]
    fn free_text_is_flattened_and_cut() {
        assert_eq!(one_line("  a\nb\tc  ", 10), "a b c");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
        assert_eq!(one_line("abcde", 5), "abcde");
    }
}
