//! Reading stdin as one item per line, in batches bounded by count and bytes — shared by
//! `publish -` and `job enqueue -`.

use std::io::{BufRead, Read};

use anyhow::Context;

/// A batch is sent once its lines add up to about this much.
pub const BATCH_BYTES_TARGET: usize = 1024 * 1024;
/// A line longer than the largest message the broker could ever accept is an input error.
pub const LINE_BYTES_MAX: usize = omnibus_types::limits::MESSAGE_BYTES_MAX;

/// Splits `input` into lines (without `\n` / `\r\n`), turns each into an item with `make`, and
/// hands them on in batches of at most `items_max` items or about [`BATCH_BYTES_TARGET`]
/// bytes (each item counted as its line plus `overhead_bytes` of framing, so many tiny lines
/// still cut batches). Stops early when `send` returns false (the receiver is gone).
pub fn read_line_batches<T>(
    mut input: impl BufRead,
    items_max: usize,
    overhead_bytes: usize,
    make: impl Fn(&[u8]) -> T,
    mut send: impl FnMut(Vec<T>) -> bool,
) -> anyhow::Result<()> {
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    let mut line = Vec::new();
    let mut line_number: u64 = 0;
    loop {
        line.clear();
        line_number += 1;
        // +2 leaves room for the line ending itself.
        let limit = (LINE_BYTES_MAX + 2) as u64;
        let read = (&mut input)
            .take(limit)
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if read == 0 {
            break;
        }
        let ended = line.last() == Some(&b'\n');
        if ended {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() > LINE_BYTES_MAX || (!ended && read as u64 == limit) {
            anyhow::bail!("line {line_number} of stdin is longer than {LINE_BYTES_MAX} bytes");
        }
        batch_bytes += line.len() + overhead_bytes;
        batch.push(make(&line));
        if batch.len() >= items_max || batch_bytes >= BATCH_BYTES_TARGET {
            batch_bytes = 0;
            if !send(std::mem::take(&mut batch)) {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(())
}
