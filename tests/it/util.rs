//! Helpers shared by the behaviour tests.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// One row of a fixture's `expected.tsv`.
pub struct Expected {
    pub uri: String,
    pub ticks: u64,
    pub rule: String,
}

/// The expected durations of a fixture (made by `fixtures/expected.py`).
pub fn expected(name: &str) -> Vec<Expected> {
    let path = fixture(name).join("expected.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Expected {
                uri: f[0].to_string(),
                ticks: f[1].parse().unwrap(),
                rule: f[3].to_string(),
            }
        })
        .collect()
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pseudolive-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
