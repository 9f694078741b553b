//! Placeholder.

use super::{not_supported, Context};
use crate::error::Result;
use crate::load::Measurement;

pub async fn run(context: &Context) -> Result<Measurement> {
    Err(not_supported(context, "not written yet"))
}
