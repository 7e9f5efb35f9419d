//! How a host file travels inside user-data: as text, or gzip+base64 when that keeps a full
//! paste under the 16 KiB limit.

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use super::HostFile;

/// Larger files (scripts, hardened units) are compressed; small ones stay readable in the paste.
const COMPRESS_ABOVE: usize = 700;

#[derive(Serialize)]
pub struct Embedded {
    path: String,
    mode: String,
    /// cloud-init's `defer`: written after the packages, so no package default overrides it.
    defer: bool,
    /// cloud-init's `write_files` encoding, when not plain text.
    encoding: Option<&'static str>,
    content: String,
}

pub fn for_user_data(file: &HostFile) -> anyhow::Result<Embedded> {
    let (encoding, content) = if file.content.len() > COMPRESS_ABOVE {
        (Some("gz+b64"), gzip_base64(&file.content)?)
    } else {
        (None, file.content.clone())
    };
    Ok(Embedded {
        path: file.path.clone(),
        mode: file.mode.clone(),
        defer: !file.before_packages,
        encoding,
        content,
    })
}

/// Deterministic (no timestamp in the gzip header), one line: wrapping would only add indentation.
fn gzip_base64(text: &str) -> anyhow::Result<String> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes())?;
    let compressed = encoder.finish().context("gzip")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(compressed))
}
