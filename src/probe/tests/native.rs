//! Tests of reading segments from disk: box headers across read windows.

use super::*;

fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

#[test]
fn boxes_across_read_windows_and_many_tiny_boxes() {
    let dir = std::env::temp_dir().join(format!("pseudolive-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let init = std::fs::read(fixture("fmp4_avc/init.mp4")).unwrap();
    let seg = std::fs::read(fixture("fmp4_avc/seg_001.m4s")).unwrap();
    let plain = fmp4::timing(Some(&init), &seg).unwrap();
    // `free` boxes in front move the fragment headers across the edges
    // of the 4 KiB read windows; ten thousand of them make many windows.
    for count in (505..=515).chain([10_000]) {
        let mut bytes: Vec<u8> = (0..count).flat_map(|_| *b"\0\0\0\x08free").collect();
        bytes.extend_from_slice(&seg);
        let path = dir.join(format!("free_{count}.m4s"));
        std::fs::write(&path, &bytes).unwrap();
        let input = SegmentInput {
            path,
            ..SegmentInput::default()
        };
        let t = scan_segment(&input, Some(&init), Depth::Full).unwrap();
        assert_eq!(t, Timing::Fmp4(plain.clone()), "{count}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
