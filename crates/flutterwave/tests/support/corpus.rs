//! Reads the corpus of payloads Flutterwave really sent: one folder per
//! endpoint or event, one JSON file per payload. Shared by the client's
//! corpus test and the emulator's conformance test (`#[path]`-included).
//!
//! Where it looks, all that exist: the repository's copy
//! (`corpus/flutterwave-v3/`), the team's shared folder beside the project
//! (`../shared/flutterwave-v3-corpus/`), and every directory in
//! `FLW_CORPUS_DIR` (colon-separated). The same file found twice counts once.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Sample {
    /// The endpoint or event: the folder's name.
    pub folder: String,
    pub file: String,
    pub path: PathBuf,
    pub raw: Vec<u8>,
    pub json: serde_json::Value,
}

fn workspace_root() -> PathBuf {
    // Both crates that include this live at `crates/<name>`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn roots() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut dirs = vec![root.join("corpus/flutterwave-v3"), root.join("../shared/flutterwave-v3-corpus")];
    if let Ok(extra) = std::env::var("FLW_CORPUS_DIR") {
        dirs.extend(extra.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Every sample, sorted by folder and file. Panics (the test fails) on a
/// file that is not JSON: a corpus file must be a payload.
pub fn load() -> Vec<Sample> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for root in roots() {
        let Ok(folders) = std::fs::read_dir(&root) else { continue };
        for folder in folders.flatten().filter(|e| e.path().is_dir()) {
            let folder_name = folder.file_name().to_string_lossy().to_string();
            let Ok(files) = std::fs::read_dir(folder.path()) else { continue };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if !seen.insert((folder_name.clone(), raw.clone())) {
                    continue;
                }
                let json = serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
                out.push(Sample {
                    folder: folder_name.clone(),
                    file: file.file_name().to_string_lossy().to_string(),
                    path,
                    raw,
                    json,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.folder, &a.file).cmp(&(&b.folder, &b.file)));
    out
}
