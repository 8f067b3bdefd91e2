//! Routes through `warp::test`: URLs, headers, errors, no socket.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use pseudolive::clock::ManualClock;
use pseudolive::http::{App, routes};
use pseudolive::library::{Library, LibraryConfig, StreamState};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{body, get, make_stream, resolve, temp_dir};

/// A library with `demo`-like streams, waited until every stream settled.
async fn app(name: &str, build: impl FnOnce(&std::path::Path)) -> (Arc<App>, std::path::PathBuf) {
    let root = temp_dir(name).join("static");
    std::fs::create_dir_all(&root).unwrap();
    build(&root);
    let library = Library::new(LibraryConfig {
        root: root.clone(),
        window: 6,
        epoch_unix: Some(pseudolive::ticks::Ticks::from_ms(1_700_000_000_000)),
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    (App::new(library, Duration::from_secs(5)), root)
}

fn standard(root: &std::path::Path) {
    make_stream(root, "big_buck_bunny", &["1000k", "2000k"], "av25");
}

fn header<'a>(res: &'a warp::http::Response<bytes::Bytes>, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn master_playlist_rewrites_variant_uris() {
    let (app, _) = app("master", standard).await;
    let res = get(&app, "/big_buck_bunny.m3u8").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "content-type"),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let text = body(&res);
    assert!(text.contains("\nbig_buck_bunny_1000k.m3u8\n"), "{text}");
    assert!(text.contains("\nbig_buck_bunny_2000k.m3u8\n"), "{text}");
    assert!(text.contains("BANDWIDTH=400000,"), "{text}");
    assert!(text.contains("CODECS=\"avc1.4d400b,mp4a.40.2\""), "{text}");
    assert!(text.contains("RESOLUTION=192x108"), "{text}");
}

#[tokio::test]
async fn media_playlist_headers_and_reproducible_now() {
    let (app, _) = app("media", standard).await;
    let res = get(&app, "/big_buck_bunny_1000k.m3u8?now=1700000100000").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "content-type"),
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(header(&res, "cache-control"), "public, max-age=1");
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let text = body(&res);
    assert!(text.contains("\nbig_buck_bunny/1000k/seg_"), "{text}");
    // 100 s after the epoch (+ 12 s of back-dating): 56 segments of 2 s listed → 50..=55.
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:50\n"), "{text}");
    let again = get(&app, "/big_buck_bunny_1000k.m3u8?now=1700000100000").await;
    assert_eq!(res.body(), again.body());
    let other = get(&app, "/big_buck_bunny_2000k.m3u8?now=1700000100000").await;
    assert!(body(&other).contains("#EXT-X-MEDIA-SEQUENCE:50\n"));
    let bad = get(&app, "/big_buck_bunny_1000k.m3u8?now=yesterday").await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn names_split_against_existing_streams() {
    let (app, _) = app("split", |root| {
        make_stream(root, "a", &["b_c"], "av25");
        make_stream(root, "a_b", &["c", "d"], "av25");
    })
    .await;
    let res = get(&app, "/a_b_c.m3u8").await;
    assert_eq!(res.status(), 200);
    assert!(body(&res).contains("\na_b/c/seg_"), "{}", body(&res));
    let res = get(&app, "/a_b_d.m3u8").await;
    assert!(body(&res).contains("a_b/d/seg_"), "{}", body(&res));
    let res = get(&app, "/a_x.m3u8").await;
    assert_eq!(res.status(), 404);
    assert!(
        body(&res).contains("known streams: a, a_b"),
        "{}",
        body(&res)
    );
}

/// Every media playlist a master links, fetched the way a player resolves
/// it against the master's URL: (playlist URL, segment URLs resolved).
async fn follow_master(app: &Arc<App>, master: &str) -> Vec<(String, Vec<String>)> {
    let text = body(&get(app, master).await);
    let mut out = Vec::new();
    for link in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let url = resolve(master, link);
        let res = get(app, &url).await;
        assert_eq!(res.status(), 200, "{url}");
        let segments = body(&res)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| resolve(&url, l))
            .collect();
        out.push((url, segments));
    }
    out
}

#[tokio::test]
async fn stream_names_cannot_shadow_each_other() {
    // `x` + variant `y_z` and `x_y` + variant `z` both read as `x_y_z`;
    // `p` + variant `q` reads as the master of stream `p_q`.
    let (app, _) = app("shadow", |root| {
        make_stream(root, "x", &["y_z"], "av25");
        make_stream(root, "x_y", &["z"], "av2997");
        make_stream(root, "p", &["q"], "av25");
        make_stream(root, "p_q", &["r"], "av2997");
    })
    .await;
    for (stream, variant) in [("x", "y_z"), ("x_y", "z"), ("p", "q"), ("p_q", "r")] {
        let links = follow_master(&app, &format!("/{stream}.m3u8")).await;
        assert_eq!(links.len(), 1, "{links:?}");
        let (url, segments) = &links[0];
        let own = format!("/{stream}/{variant}/seg_");
        assert!(
            !segments.is_empty() && segments.iter().all(|s| s.starts_with(&own)),
            "master of {stream} links {url}, which serves other media: {segments:?}"
        );
        for s in segments {
            assert_eq!(get(&app, s).await.status(), 200, "{s}");
        }
    }
}

#[tokio::test]
async fn gzip_when_accepted() {
    let (app, _) = app("gzip", standard).await;
    let filter = routes(app.clone());
    let plain = warp::test::request()
        .path("/big_buck_bunny_1000k.m3u8?now=1700000100000")
        .reply(&filter)
        .await;
    let zipped = warp::test::request()
        .path("/big_buck_bunny_1000k.m3u8?now=1700000100000")
        .header("accept-encoding", "br, gzip;q=0.8")
        .reply(&filter)
        .await;
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert!(header(&zipped, "vary").contains("Accept-Encoding"));
    let mut out = String::new();
    flate2::read::GzDecoder::new(&zipped.body()[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out.as_bytes(), plain.body());
    let refused = warp::test::request()
        .path("/big_buck_bunny.m3u8")
        .header("accept-encoding", "gzip;q=0")
        .reply(&filter)
        .await;
    assert_eq!(header(&refused, "content-encoding"), "");
}

#[tokio::test]
async fn segments_with_range_head_and_cache_headers() {
    let (app, root) = app("segments", standard).await;
    let file = std::fs::read(root.join("big_buck_bunny/1000k/seg_001.ts")).unwrap();
    let filter = routes(app.clone());
    let res = warp::test::request()
        .path("/big_buck_bunny/1000k/seg_001.ts")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), "video/mp2t");
    assert_eq!(res.body().as_ref(), file.as_slice());
    assert!(header(&res, "cache-control").contains("max-age=86400"));
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    assert!(!header(&res, "etag").is_empty());
    assert!(!header(&res, "last-modified").is_empty());

    let res = warp::test::request()
        .path("/big_buck_bunny/1000k/seg_001.ts")
        .header("range", "bytes=188-375")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 206);
    assert_eq!(
        header(&res, "content-range"),
        format!("bytes 188-375/{}", file.len())
    );
    assert_eq!(res.body().as_ref(), &file[188..376]);

    let res = warp::test::request()
        .path("/big_buck_bunny/1000k/seg_001.ts")
        .header("range", format!("bytes={}-", file.len()))
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 416);
    assert_eq!(
        header(&res, "content-range"),
        format!("bytes */{}", file.len())
    );

    let res = warp::test::request()
        .method("HEAD")
        .path("/big_buck_bunny/1000k/seg_001.ts")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.body().is_empty());
    assert_eq!(header(&res, "content-length"), file.len().to_string());

    let etag = {
        let r = warp::test::request()
            .path("/big_buck_bunny/1000k/seg_001.ts")
            .reply(&filter)
            .await;
        header(&r, "etag").to_string()
    };
    let res = warp::test::request()
        .path("/big_buck_bunny/1000k/seg_001.ts")
        .header("if-none-match", etag)
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 304);
}

#[tokio::test]
async fn cors_preflight_and_methods() {
    let (app, _) = app("cors", standard).await;
    let filter = routes(app.clone());
    let res = warp::test::request()
        .method("OPTIONS")
        .path("/big_buck_bunny_1000k.m3u8")
        .header("origin", "http://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    assert!(header(&res, "access-control-allow-methods").contains("GET"));
    assert!(
        header(&res, "access-control-allow-headers")
            .to_lowercase()
            .contains("range")
    );

    let res = warp::test::request()
        .method("POST")
        .path("/big_buck_bunny.m3u8")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 405);
    assert_eq!(header(&res, "allow"), "GET, HEAD, OPTIONS");
    assert_eq!(header(&res, "access-control-allow-origin"), "*");
    let res = warp::test::request()
        .method("DELETE")
        .path("/")
        .reply(&filter)
        .await;
    assert_eq!(res.status(), 405);
    let res = get(&app, "/big_buck_bunny.m3u8").await;
    assert!(header(&res, "access-control-expose-headers").contains("Content-Range"));
}

#[tokio::test]
async fn unknown_names_get_404_with_a_reason() {
    let (app, _) = app("notfound", standard).await;
    for path in [
        "/nope.m3u8",
        "/big_buck_bunny_3000k.m3u8",
        "/big_buck_bunny/1000k/nope.ts",
        "/x",
        "/nope/a/b.ts",
    ] {
        let res = get(&app, path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(header(&res, "access-control-allow-origin"), "*");
        let text = body(&res);
        assert!(
            text.ends_with('\n') && text.lines().count() == 1,
            "{text:?}"
        );
    }
    assert!(body(&get(&app, "/nope.m3u8").await).contains("known streams: big_buck_bunny"));
}

#[tokio::test]
async fn a_failed_stream_answers_with_its_reason_and_others_keep_working() {
    let (app, _) = app("failed", |root| {
        standard(root);
        make_stream(root, "broken", &["lo", "hi"], "av25");
        std::fs::remove_file(root.join("broken/hi/seg_002.ts")).unwrap();
        make_stream(root, "uneven", &["lo", "hi"], "av25");
        std::fs::copy(
            crate::util::fixture("bframes/index.m3u8"),
            root.join("uneven/hi/index.m3u8"),
        )
        .unwrap();
        for f in ["seg_005.ts", "seg_006.ts"] {
            std::fs::copy(
                crate::util::fixture("bframes").join(f),
                root.join("uneven/hi").join(f),
            )
            .unwrap();
        }
    })
    .await;
    let res = get(&app, "/broken.m3u8").await;
    assert_eq!(res.status(), 500);
    let text = body(&res);
    assert!(
        text.contains("broken/hi/seg_002.ts") && text.contains("missing"),
        "{text}"
    );
    let res = get(&app, "/uneven_lo.m3u8").await;
    assert_eq!(res.status(), 500);
    let text = body(&res);
    assert!(
        text.contains("variant hi loops in") && text.contains("(7 segments) but variant lo"),
        "{text}"
    );
    assert_eq!(get(&app, "/big_buck_bunny_1000k.m3u8").await.status(), 200);
    let json = body(&get(&app, "/streams.json").await);
    assert!(
        json.contains("\"failed\"") && json.contains("\"ready\""),
        "{json}"
    );
    let html = body(&get(&app, "/").await);
    assert!(
        html.contains("big_buck_bunny") && html.contains("failed: "),
        "{html}"
    );
}

#[tokio::test]
async fn nothing_outside_the_root_is_served() {
    let (app, root) = app("traversal", standard).await;
    let secret = root.parent().unwrap().join("secret.ts");
    std::fs::write(&secret, b"SECRET").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("big_buck_bunny/1000k/link.ts")).unwrap();
    std::os::unix::fs::symlink(root.parent().unwrap(), root.join("big_buck_bunny/up")).unwrap();
    for path in [
        "/big_buck_bunny/../secret.ts",
        "/big_buck_bunny/%2e%2e/secret.ts",
        "/big_buck_bunny/%2E%2E/%2E%2E/secret.ts",
        "/big_buck_bunny/..%2fsecret.ts",
        "/big_buck_bunny/1000k/link.ts",
        "/big_buck_bunny/up/secret.ts",
        "/..%5csecret.ts",
        "/big_buck_bunny/%00/x.ts",
        "/big_buck_bunny/%ff%fe.ts",
    ] {
        let res = get(&app, path).await;
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
        assert!(!body(&res).contains("SECRET"), "{path}");
    }
}

#[tokio::test]
async fn new_directories_are_found_without_a_restart() {
    let (app, root) = app("rescan", standard).await;
    make_stream(&root, "late", &["v"], "av25");
    let res = get(&app, "/late.m3u8").await;
    assert_eq!(res.status(), 200, "{}", body(&res));
    assert!(body(&res).contains("late_v.m3u8"));
}

#[tokio::test]
async fn a_stream_still_loading_answers_503_with_retry_after() {
    let dir = temp_dir("loading");
    let root = dir.join("static");
    make_stream(&root, "slow", &["v"], "av25");
    // An "ffprobe" that takes its time.
    let fake = dir.join("ffprobe");
    std::fs::write(&fake, "#!/bin/sh\nsleep 2\nexit 1\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let library = Library::new(LibraryConfig {
        root,
        window: 6,
        epoch_unix: None,
        prober: Prober {
            mode: ProbeMode::Ffprobe,
            ffprobe: Some(fake),
        },
    });
    library.rescan().unwrap();
    let app = App::new(library.clone(), Duration::from_millis(200));
    let res = get(&app, "/slow_v.m3u8").await;
    assert_eq!(res.status(), 503);
    assert_eq!(header(&res, "retry-after"), "2");
    assert!(body(&res).contains("loading"));
    // Segments are served from disk whatever the load state.
    assert_eq!(get(&app, "/slow/v/seg_000.ts").await.status(), 200);
    let state = library
        .get("slow")
        .unwrap()
        .settled(Duration::from_secs(60))
        .await;
    assert!(
        matches!(state, StreamState::Ready(_)),
        "falls back to #EXTINF"
    );
    assert_eq!(get(&app, "/slow_v.m3u8").await.status(), 200);
}

#[tokio::test]
async fn looking_at_the_index_does_not_start_a_timeline() {
    let root = temp_dir("index-anchor").join("static");
    standard(&root);
    let library = Library::new(LibraryConfig {
        root,
        window: 6,
        epoch_unix: None,
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    library
        .get("big_buck_bunny")
        .unwrap()
        .settled(Duration::from_secs(30))
        .await;
    let app = App::new(library, Duration::from_secs(5));
    let json: serde_json::Value =
        serde_json::from_slice(get(&app, "/streams.json").await.body()).unwrap();
    assert!(json[0]["media_sequence"].is_null(), "{json}");
    assert!(body(&get(&app, "/").await).contains("not started"));
    // The first playlist request starts it, back-dated by one window: sequence 0.
    assert_eq!(get(&app, "/big_buck_bunny_1000k.m3u8").await.status(), 200);
    let json: serde_json::Value =
        serde_json::from_slice(get(&app, "/streams.json").await.body()).unwrap();
    assert_eq!(json[0]["media_sequence"], 0, "{json}");
}

/// A library over `standard` with no epoch, on a clock the test moves.
async fn app_on_clock(name: &str) -> (Arc<App>, Arc<ManualClock>, std::path::PathBuf) {
    let root = temp_dir(name).join("static");
    standard(&root);
    let library = Library::new(LibraryConfig {
        root: root.clone(),
        window: 6,
        epoch_unix: None,
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let clock = Arc::new(ManualClock::new(Ticks::from_ms(1_800_000_000_000)));
    let app = App::with_clock(library, Duration::from_secs(5), clock.clone());
    (app, clock, root)
}

fn media_sequence(res: &warp::http::Response<bytes::Bytes>) -> u64 {
    crate::util::parse(res.body()).media_sequence
}

#[tokio::test]
async fn now_parameter_is_read_only() {
    for (name, first) in [
        ("now-future", "253402300799999"),
        ("now-past", "1700000000000"),
    ] {
        let (app, clock, _) = app_on_clock(name).await;
        let url = format!("/big_buck_bunny_1000k.m3u8?now={first}");
        assert_eq!(get(&app, &url).await.status(), 200);
        // The timeline starts at the server's clock, not at the first ?now=.
        assert_eq!(
            media_sequence(&get(&app, "/big_buck_bunny_1000k.m3u8").await),
            0
        );
        clock.advance(Ticks::from_secs(20));
        let later = media_sequence(&get(&app, "/big_buck_bunny_1000k.m3u8").await);
        assert!((9..=11).contains(&later), "{name}: {later}");
        // A future ?now= renders that instant and leaves the cache alone.
        let ahead = get(&app, "/big_buck_bunny_1000k.m3u8?now=1800000100000").await;
        assert!(media_sequence(&ahead) > later + 30, "{name}");
        let again = media_sequence(&get(&app, "/big_buck_bunny_1000k.m3u8").await);
        assert_eq!(again, later, "{name}");
    }
}

#[tokio::test]
async fn playback_requests_do_not_rescan_the_root() {
    let (app, _, root) = app_on_clock("no-rescan").await;
    make_stream(&root, "newcomer", &["v"], "av25");
    for path in [
        "/big_buck_bunny.m3u8",
        "/big_buck_bunny_1000k.m3u8",
        "/big_buck_bunny_2000k.m3u8",
        "/big_buck_bunny/1000k.m3u8",
    ] {
        assert_eq!(get(&app, path).await.status(), 200, "{path}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(get(&app, "/streams.json").await.body()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    // An unknown name does rescan, and finds the new stream.
    assert_eq!(get(&app, "/newcomer_v.m3u8").await.status(), 200);
}

#[tokio::test]
async fn requests_for_queued_streams_do_not_bypass_the_one_load_limit() {
    let root = temp_dir("bounded-loads").join("static");
    for name in ["s1", "s2", "s3", "s4"] {
        make_stream(&root, name, &["v"], "av25");
    }
    let library = Library::new(LibraryConfig {
        root,
        window: 6,
        epoch_unix: None,
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    let app = App::new(library.clone(), Duration::from_secs(30));
    let requests = ["/s4.m3u8", "/s3_v.m3u8", "/s2.m3u8", "/s1_v.m3u8"].map(|p| get(&app, p));
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status(), 200);
    }
    assert_eq!(library.peak_concurrent_loads(), 1);
}

#[tokio::test]
async fn a_failed_stream_loads_again_once_its_files_are_fixed() {
    let (app, root) = app("retry", |root| {
        make_stream(root, "broken", &["v"], "av25");
        std::fs::remove_file(root.join("broken/v/seg_002.ts")).unwrap();
    })
    .await;
    let res = get(&app, "/broken_v.m3u8").await;
    assert_eq!(res.status(), 500);
    assert!(body(&res).contains("seg_002.ts"), "{}", body(&res));
    std::fs::copy(
        crate::util::fixture("av25/seg_002.ts"),
        root.join("broken/v/seg_002.ts"),
    )
    .unwrap();
    assert_eq!(app.library.rescan().unwrap(), 1);
    let slot = app.library.get("broken").unwrap();
    let state = slot.settled(Duration::from_secs(30)).await;
    assert!(matches!(state, StreamState::Ready(_)), "{state:?}");
    assert_eq!(get(&app, "/broken_v.m3u8").await.status(), 200);
}

#[tokio::test]
async fn aes_keys_without_iv_carry_the_iv_the_source_implied() {
    let (app, _) = app("implied-iv", |root| {
        make_stream(root, "enc", &["v"], "av25");
        let playlist = root.join("enc/v/index.m3u8");
        let text = std::fs::read_to_string(&playlist).unwrap().replace(
            "#EXT-X-MEDIA-SEQUENCE:0\n",
            "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n",
        );
        assert!(text.contains("METHOD=AES-128"));
        std::fs::write(&playlist, text).unwrap();
        std::fs::write(root.join("enc/v/key.bin"), [7u8; 16]).unwrap();
    })
    .await;
    // Far enough for the window to span a loop point.
    let text = body(&get(&app, "/enc_v.m3u8?now=1700000100000").await);
    let n = 5;
    let mut uri_ivs = Vec::new();
    let mut iv = None;
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("#EXT-X-KEY:") {
            assert!(k.contains("URI=\"enc/v/key.bin\""), "{k}");
            iv = k.split(",IV=").nth(1).map(str::to_string);
        } else if !line.starts_with('#') {
            uri_ivs.push((
                line.to_string(),
                iv.take().expect("a KEY before every segment"),
            ));
        }
    }
    assert!(uri_ivs.len() >= 6, "{text}");
    for (uri, iv) in uri_ivs {
        let i: u64 = uri[uri.len() - 6..uri.len() - 3].parse().unwrap();
        assert!(i < n);
        assert_eq!(iv, format!("0x{:032x}", 7 + i), "{uri}");
    }
    assert_eq!(get(&app, "/enc/v/key.bin").await.status(), 200);
}

#[tokio::test]
async fn ad_markers_appear_before_the_same_segment_on_every_loop() {
    let (app, _) = app("ad-tags", |root| {
        make_stream(root, "ads", &["v"], "av25");
        let playlist = root.join("ads/v/index.m3u8");
        let text = std::fs::read_to_string(&playlist).unwrap();
        let text = text
            .replacen(
                "#EXT-X-MEDIA-SEQUENCE:0\n",
                "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
                 #EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00.000Z\n",
                1,
            )
            .replace(
                "seg_000.ts\n",
                "seg_000.ts\n#EXT-X-CUE-OUT:4\n#EXT-X-DATERANGE:ID=\"ad\",CLASS=\"x\",\
                 START-DATE=\"2020-01-01T00:00:02.000Z\",DURATION=4\n",
            )
            .replace("seg_002.ts\n", "seg_002.ts\n#EXT-X-CUE-IN\n");
        std::fs::write(&playlist, text).unwrap();
    })
    .await;
    let mut ids = std::collections::BTreeSet::new();
    // Two loops apart (10 s each), so the window holds the tags of different loops.
    for now in [1_700_000_100_000u64, 1_700_000_110_000, 1_700_000_120_000] {
        let text = body(&get(&app, &format!("/ads_v.m3u8?now={now}")).await);
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let next_uri = lines[i..].iter().find(|l| !l.starts_with('#')).unwrap();
            if line.starts_with("#EXT-X-CUE-OUT") || line.starts_with("#EXT-X-DATERANGE") {
                assert!(next_uri.ends_with("seg_001.ts"), "{line} before {next_uri}");
            }
            if *line == "#EXT-X-CUE-IN" {
                assert!(next_uri.ends_with("seg_003.ts"), "{line} before {next_uri}");
            }
            if line.ends_with("seg_001.ts") {
                assert!(
                    lines[..i]
                        .iter()
                        .rev()
                        .take(3)
                        .any(|l| l.starts_with("#EXT-X-CUE-OUT"))
                );
            }
            if let Some(attrs) = line.strip_prefix("#EXT-X-DATERANGE:") {
                ids.insert(attrs.split('"').nth(1).unwrap().to_string());
            }
        }
    }
    assert!(ids.len() >= 3, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("ad-")), "{ids:?}");
}

fn status_of(res: &warp::http::Response<bytes::Bytes>) -> u16 {
    res.status().as_u16()
}

#[tokio::test]
async fn per_url_window_dvr_and_start_keep_the_default_timeline() {
    let (app, clock, _) = app_on_clock("options-window").await;
    // A fresh timeline has little history: a long window lists what there is.
    let fresh = crate::util::parse(
        get(&app, "/window=30/big_buck_bunny_1000k.m3u8")
            .await
            .body(),
    );
    assert_eq!((fresh.media_sequence, fresh.segments.len()), (0, 6));
    clock.advance(Ticks::from_secs(300));
    let plain = crate::util::parse(get(&app, "/big_buck_bunny_1000k.m3u8").await.body());
    let long = crate::util::parse(
        get(&app, "/window=30/big_buck_bunny_1000k.m3u8")
            .await
            .body(),
    );
    let dvr = crate::util::parse(get(&app, "/dvr=120/big_buck_bunny_1000k.m3u8").await.body());
    let last = |p: &crate::util::Parsed| p.media_sequence + p.segments.len() as u64 - 1;
    // Same live edge, same numbering, more history.
    assert_eq!(last(&long), last(&plain));
    assert_eq!(last(&dvr), last(&plain));
    assert_eq!(long.segments.len(), 30);
    let dvr_secs: f64 = dvr.segments.iter().map(|s| s.duration).sum();
    assert!((120.0..124.0).contains(&dvr_secs), "{dvr_secs}");
    // The default timeline did not move.
    let again = crate::util::parse(get(&app, "/big_buck_bunny_1000k.m3u8").await.body());
    assert_eq!(again.media_sequence, plain.media_sequence);
    // start= is its own timeline, the same whenever it is asked.
    let start = 1_800_000_000 - 100;
    let own = crate::util::parse(
        get(&app, &format!("/start={start}/big_buck_bunny_1000k.m3u8"))
            .await
            .body(),
    );
    assert_eq!(own.segments[0].pdt_ms.unwrap() % 1000, 0);
    assert!(own.media_sequence != plain.media_sequence);
    // Options reach every playlist through relative URIs.
    let master = body(&get(&app, "/window=30/big_buck_bunny.m3u8").await);
    assert!(master.contains("\nbig_buck_bunny_1000k.m3u8\n"), "{master}");
}

#[tokio::test]
async fn unknown_options_and_bad_values_are_400_naming_the_key() {
    let (app, _, _) = app_on_clock("options-bad").await;
    for (path, key) in [
        ("/colour=red/big_buck_bunny.m3u8", "colour"),
        ("/window=0/big_buck_bunny.m3u8", "window"),
        ("/fault=teapot/big_buck_bunny_1000k.m3u8", "fault"),
    ] {
        let res = get(&app, path).await;
        assert_eq!(status_of(&res), 400, "{path}");
        let text = body(&res);
        assert!(
            text.contains(key) && text.contains("window="),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn faults_from_the_url() {
    let (app, clock, _) = app_on_clock("faults").await;
    // Delays and rates run on tokio's clock, paused: it jumps instead of waiting.
    tokio::time::pause();
    clock.advance(Ticks::from_secs(600));
    // 404 on every 10th segment: the playlist numbers its segment URIs.
    let url = "/fault=404,every=10/big_buck_bunny_1000k.m3u8";
    let text = body(&get(&app, url).await);
    let segments: Vec<&str> = text.lines().filter(|l| l.starts_with("g=")).collect();
    assert!(segments.len() >= 6, "{text}");
    for s in segments {
        let g: u64 = s[2..s.find('/').unwrap()].parse().unwrap();
        let res = get(&app, &format!("/fault=404,every=10/{s}")).await;
        let want = if g.is_multiple_of(10) { 404 } else { 200 };
        assert_eq!(status_of(&res), want, "{s}");
    }
    // 503 on playlists during seconds 30–36 of every minute of the timeline.
    let url = "/fault=503,on=playlist,cycle=60:30-36/big_buck_bunny_1000k.m3u8";
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        seen.insert(status_of(&get(&app, url).await));
        clock.advance(Ticks::from_secs(1));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![200, 503]);
    // A stale playlist repeats itself while the fault holds, then moves on.
    let url = "/fault=stale,cycle=20:0-10/big_buck_bunny_1000k.m3u8";
    let mut pairs = Vec::new();
    for _ in 0..40 {
        let stale = media_sequence(&get(&app, url).await);
        let live = media_sequence(&get(&app, "/big_buck_bunny_1000k.m3u8").await);
        pairs.push((stale, live));
        clock.advance(Ticks::from_secs(1));
    }
    // Never ahead of the live playlist; caught up with it outside the fault…
    assert!(pairs.iter().all(|(s, l)| s <= l), "{pairs:?}");
    assert!(
        pairs.iter().filter(|(s, l)| s == l).count() >= 15,
        "{pairs:?}"
    );
    // …and frozen for whole 10 s stretches while the live one moves on.
    let frozen = pairs
        .windows(10)
        .filter(|w| w.iter().all(|p| p.0 == w[0].0) && w[9].1 >= w[0].1 + 4)
        .count();
    assert!(frozen >= 2, "{pairs:?}");
    // A delay holds the answer (on tokio's paused clock).
    let started = tokio::time::Instant::now();
    let res = get(&app, "/fault=delay:2500,on=master/big_buck_bunny.m3u8").await;
    assert_eq!(status_of(&res), 200);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    // A slow body arrives at its rate: 1 Mbit/s for a segment of ~N bytes.
    let size = std::fs::metadata(crate::util::fixture("av25/seg_000.ts"))
        .unwrap()
        .len();
    let started = tokio::time::Instant::now();
    let res = get(&app, "/fault=slow:1000/big_buck_bunny/1000k/seg_000.ts").await;
    assert_eq!(res.body().len() as u64, size);
    let expected = Duration::from_secs_f64(size as f64 / 125_000.0);
    assert!(
        started.elapsed() >= expected.mul_f64(0.9),
        "{:?}",
        started.elapsed()
    );
    // Only the variant named.
    let res = get(
        &app,
        "/fault=500,variant=2000k/big_buck_bunny/1000k/seg_000.ts",
    )
    .await;
    assert_eq!(status_of(&res), 200);
    let res = get(
        &app,
        "/fault=500,variant=2000k/big_buck_bunny/2000k/seg_000.ts",
    )
    .await;
    assert_eq!(status_of(&res), 500);
}

#[tokio::test]
async fn continuous_timestamps_run_on_across_loop_points() {
    use pseudolive::probe::ts::{Depth, scan};
    let (app, _) = app("continuous", standard).await;
    // 10 s loops: a 60 s window holds six loop points.
    let base = "/ts=continuous/window=30";
    let text = body(
        &get(
            &app,
            &format!("{base}/big_buck_bunny_1000k.m3u8?now=1700000300000"),
        )
        .await,
    );
    let listed = crate::util::parse(text.as_bytes());
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    let mut previous: Option<(u64, f64)> = None;
    for seg in &listed.segments {
        assert!(seg.uri.starts_with("g="), "{}", seg.uri);
        let res = get(&app, &format!("{base}/{}", seg.uri)).await;
        assert_eq!(res.status(), 200, "{}", seg.uri);
        assert_eq!(header(&res, "content-type"), "video/mp2t");
        let start = scan(res.body(), Depth::Start).unwrap().start_pts;
        if let Some((before, duration)) = previous {
            let step = pseudolive::ticks::pts_diff(start, before);
            let want = (duration * 90_000.0).round() as u64;
            assert!(
                step.abs_diff(want) <= 1,
                "{}: {step} after {before}, want {want}",
                seg.uri
            );
        }
        previous = Some((start, seg.duration));
    }
    // The same URL always gives the same bytes.
    let first = format!("{base}/{}", listed.segments[0].uri);
    assert_eq!(
        get(&app, &first).await.body(),
        get(&app, &first).await.body()
    );
    // Source mode: the files as they are.
    let plain = get(&app, "/big_buck_bunny/1000k/seg_000.ts").await;
    let file = std::fs::read(crate::util::fixture("av25/seg_000.ts")).unwrap();
    assert_eq!(plain.body().as_ref(), file.as_slice());
}

/// A Prometheus text exposition, parsed strictly: every sample line is
/// `name{label="value",…} number`, every `# TYPE` names a known type.
/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.split_whitespace().nth(1).unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, Vec::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

#[tokio::test]
async fn metrics_count_requests_faults_and_measurements() {
    let (app, _) = app("metrics", standard).await;
    for path in [
        "/big_buck_bunny.m3u8",
        "/big_buck_bunny_1000k.m3u8",
        "/big_buck_bunny_1000k.m3u8",
        "/big_buck_bunny/1000k/seg_000.ts",
        "/nope.m3u8",
        "/fault=503/big_buck_bunny/1000k/seg_001.ts",
    ] {
        get(&app, path).await;
    }
    let res = get(&app, "/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/plain"));
    let samples = parse_prometheus(&body(&res));
    let value = |name: &str, want: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    assert!(
        value(
            "pseudolive_requests_total",
            &[("route", "playlist"), ("status", "200")]
        ) >= 3.0
    );
    assert!(
        value(
            "pseudolive_requests_total",
            &[("route", "playlist"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        value(
            "pseudolive_requests_total",
            &[("route", "segment"), ("status", "503")]
        ) >= 1.0
    );
    let segment_bytes = std::fs::metadata(crate::util::fixture("av25/seg_000.ts"))
        .unwrap()
        .len();
    assert!(
        value("pseudolive_response_bytes_total", &[("route", "segment")]) >= segment_bytes as f64
    );
    assert!(value("pseudolive_faults_total", &[("action", "status")]) >= 1.0);
    assert!(value("pseudolive_playlist_renders_total", &[]) >= 1.0);
    assert!(value("pseudolive_playlist_cache_hits_total", &[]) >= 1.0);
    assert_eq!(
        value(
            "pseudolive_segments",
            &[("stream", "big_buck_bunny"), ("method", "native")]
        ),
        10.0
    );
    assert!(
        value(
            "pseudolive_stream_load_seconds",
            &[("stream", "big_buck_bunny")]
        ) > 0.0
    );
}

#[tokio::test]
async fn stream_page_and_its_live_state() {
    let (app, clock, _) = app_on_clock("page").await;
    let res = get(&app, "/big_buck_bunny").await;
    assert_eq!(res.status(), 200);
    let html = body(&res);
    assert!(
        html.contains("big_buck_bunny.m3u8") && html.contains("hls.min.js"),
        "{html}"
    );
    let state = |res: warp::http::Response<bytes::Bytes>| -> serde_json::Value {
        serde_json::from_slice(res.body()).unwrap()
    };
    let before = state(get(&app, "/big_buck_bunny.json").await);
    assert_eq!(before["state"], "ready");
    assert!(
        before["media_sequence"].is_null(),
        "the page does not start the timeline"
    );
    assert_eq!(before["tracks"][0]["segments"].as_array().unwrap().len(), 5);
    assert_eq!(before["tracks"][0]["segments"][0]["method"], "native");
    get(&app, "/big_buck_bunny_1000k.m3u8").await;
    clock.advance(Ticks::from_secs(13));
    let after = state(get(&app, "/big_buck_bunny.json").await);
    assert_eq!(after["media_sequence"], 6);
    assert_eq!(after["loop"], 2);
    let pos = after["position_seconds"].as_f64().unwrap();
    let next = after["next_loop_point_seconds"].as_f64().unwrap();
    assert!((pos + next - 10.0).abs() < 1e-9, "{after}");
    assert_eq!(
        after["tracks"][1]["window_indices"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(get(&app, "/nope").await.status(), 404);
    let index = body(&get(&app, "/").await);
    assert!(
        index.contains("href=\"/big_buck_bunny\"") && index.contains("10 / 0 / 0"),
        "{index}"
    );
}

#[tokio::test]
async fn fmp4_and_byte_range_streams_beside_ts_streams() {
    use crate::util::{copy_stream, make_stream_all};
    let (app, _) = app("fmp4", |root| {
        standard(root);
        make_stream_all(root, "fmp4", &["v"], "fmp4_avc");
        make_stream_all(root, "single", &["v"], "fmp4_single");
        make_stream_all(root, "tsrange", &["v"], "ts_single");
        copy_stream(root, "cmaf", "cmaf_shaka");
    })
    .await;
    let json: serde_json::Value =
        serde_json::from_slice(get(&app, "/streams.json").await.body()).unwrap();
    for s in json.as_array().unwrap() {
        assert_eq!(s["state"], "ready", "{s}");
        assert_eq!(s["methods"]["ffprobe"], 0, "{s}");
        assert_eq!(s["methods"]["playlist"], 0, "{s}");
    }
    // fMP4: the init section listed (version 6), served as MP4.
    let text = body(&get(&app, "/fmp4_v.m3u8").await);
    assert!(text.contains("#EXT-X-VERSION:6\n"), "{text}");
    assert!(
        text.contains("#EXT-X-MAP:URI=\"fmp4/v/init.mp4\"\n"),
        "{text}"
    );
    let init = get(&app, "/fmp4/v/init.mp4").await;
    assert_eq!(init.status(), 200);
    assert_eq!(header(&init, "content-type"), "application/mp4");
    let seg = get(&app, "/fmp4/v/seg_000.m4s").await;
    assert_eq!(header(&seg, "content-type"), "video/mp4");
    // Single-file CMAF: MAP and segments as byte ranges, served with Range.
    let text = body(&get(&app, "/single_v.m3u8").await);
    assert!(
        text.contains("#EXT-X-MAP:URI=\"single/v/media.mp4\",BYTERANGE=\"1367@0\"\n"),
        "{text}"
    );
    assert!(text.contains("#EXT-X-BYTERANGE:"), "{text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .unwrap();
    let (len, off): (u64, u64) = {
        let (l, o) = line.split_once('@').unwrap();
        (l.parse().unwrap(), o.parse().unwrap())
    };
    let res = warp::test::request()
        .path("/single/v/media.mp4")
        .header("range", format!("bytes={}-{}", off, off + len - 1))
        .reply(&routes(app.clone()))
        .await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.body().len() as u64, len);
    // Byte-range TS, every range with an explicit offset.
    let text = body(&get(&app, "/tsrange_v.m3u8").await);
    let ranges: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-BYTERANGE:"))
        .collect();
    assert!(
        ranges.len() >= 3 && ranges.iter().all(|r| r.contains('@')),
        "{text}"
    );
    assert!(text.contains("#EXT-X-VERSION:4\n"), "{text}");
    // Shaka Packager CMAF with a separate audio rendition.
    let master = body(&get(&app, "/cmaf.m3u8").await);
    assert!(
        master.contains("URI=\"cmaf_audio.m3u8\"") && master.contains("\ncmaf_video.m3u8\n"),
        "{master}"
    );
    let audio = body(&get(&app, "/cmaf_audio.m3u8").await);
    assert!(audio.contains("#EXT-X-MAP:URI=\"cmaf/audio/"), "{audio}");
}

#[tokio::test]
async fn continuous_timestamps_for_fmp4() {
    use pseudolive::probe::fmp4;
    let (app, _) = app("continuous-fmp4", |root| {
        crate::util::make_stream_all(root, "f", &["v"], "fmp4_avc");
    })
    .await;
    let base = "/ts=continuous/window=12";
    let text = body(&get(&app, &format!("{base}/f_v.m3u8?now=1700000300000")).await);
    let listed = crate::util::parse(text.as_bytes());
    let init = get(&app, &format!("{base}/f/v/init.mp4"))
        .await
        .body()
        .clone();
    let init = fmp4::parse_init(&init).unwrap();
    let mut previous: Option<(u64, f64, u32)> = None;
    let mut loop_points = 0;
    for seg in &listed.segments {
        loop_points += usize::from(seg.discontinuity);
        let res = get(&app, &format!("{base}/{}", seg.uri)).await;
        assert_eq!(res.status(), 200, "{}", seg.uri);
        let t = fmp4::scan(&init, res.body()).unwrap();
        let start = t.start_units.unwrap();
        if let Some((before, duration, timescale)) = previous {
            let want = (duration * f64::from(timescale)).round() as i64;
            let step = start as i64 - before as i64;
            assert!(
                (step - want).abs() <= 1,
                "{}: step {step}, want {want}",
                seg.uri
            );
        }
        previous = Some((start, seg.duration, t.timescale));
    }
    assert!(loop_points >= 2, "{text}");
}

#[tokio::test]
async fn subtitles_cut_differently_share_the_clock() {
    let (app, _) = app("webvtt", |root| {
        make_stream(root, "sub", &["v"], "av25");
        let dir = root.join("sub/subs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("en.vtt"),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:03.000\nhello\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("index.m3u8"),
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nen.vtt\n#EXT-X-ENDLIST\n",
        )
        .unwrap();
        let master = root.join("sub/abr.m3u8");
        let text = std::fs::read_to_string(&master).unwrap().replace(
            "#EXT-X-STREAM-INF:BANDWIDTH=200000,",
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",URI=\"subs/index.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=200000,SUBTITLES=\"subs\",",
        );
        std::fs::write(&master, text).unwrap();
    })
    .await;
    let json: serde_json::Value =
        serde_json::from_slice(get(&app, "/streams.json").await.body()).unwrap();
    assert_eq!(json[0]["state"], "ready", "{json}");
    assert_eq!(json[0]["methods"]["playlist"], 1, "{json}");
    for now in (0..40).map(|k| 1_700_000_100_000u64 + k * 700) {
        let video = crate::util::parse(get(&app, &format!("/sub_v.m3u8?now={now}")).await.body());
        let subs = crate::util::parse(get(&app, &format!("/sub_subs.m3u8?now={now}")).await.body());
        assert_eq!(subs.target_duration, video.target_duration);
        assert!(
            subs.segments
                .iter()
                .all(|s| (s.duration - 10.0).abs() < 1e-9)
        );
        // The discontinuity number of the content at the window's start agrees
        // (a subtitle segment may start at the loop point the video window has passed).
        let cc = |p: &crate::util::Parsed| {
            p.discontinuity_sequence + u64::from(p.segments[0].discontinuity)
        };
        assert_eq!(cc(&subs), cc(&video), "{now}");
        // The subtitle window covers the video window's span.
        let v_start = video.segments[0].pdt_ms.unwrap();
        let s_start = subs.segments[0].pdt_ms.unwrap();
        assert!(
            s_start <= v_start && v_start - s_start < 10_000,
            "{now}: {s_start} {v_start}"
        );
    }
    let vtt = get(&app, "/sub/subs/en.vtt").await;
    assert_eq!(header(&vtt, "content-type"), "text/vtt");
    assert!(body(&vtt).contains("X-TIMESTAMP-MAP=MPEGTS:126000"));
}

/// AES-128-CBC with PKCS#7 padding, as `-hls_key_info_file` writes segments.
fn aes128_encrypt(key: &[u8; 16], iv: [u8; 16], data: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
    let cipher = aes::Aes128::new(key.into());
    let pad = 16 - data.len() % 16;
    let mut buf = data.to_vec();
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let mut chain = iv;
    for block in buf.chunks_exact_mut(16) {
        for (b, c) in block.iter_mut().zip(chain) {
            *b ^= c;
        }
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
        chain.copy_from_slice(block);
    }
    buf
}

#[tokio::test]
async fn aes128_segments_are_measured_natively() {
    let key = [0x5au8; 16];
    let (app, _) = app("aes-native", |root| {
        for (name, explicit_iv) in [("implied", false), ("explicit", true)] {
            make_stream(root, name, &["v"], "av25");
            let dir = root.join(name).join("v");
            std::fs::write(dir.join("key.bin"), key).unwrap();
            let iv_attr = if explicit_iv {
                ",IV=0x000102030405060708090a0b0c0d0e0f"
            } else {
                ""
            };
            for i in 0..5u128 {
                let path = dir.join(format!("seg_{i:03}.ts"));
                let iv = if explicit_iv {
                    0x000102030405060708090a0b0c0d0e0fu128.to_be_bytes()
                } else {
                    (3 + i).to_be_bytes()
                };
                let clear = std::fs::read(&path).unwrap();
                std::fs::write(&path, aes128_encrypt(&key, iv, &clear)).unwrap();
            }
            let playlist = dir.join("index.m3u8");
            let text = std::fs::read_to_string(&playlist).unwrap().replace(
                "#EXT-X-MEDIA-SEQUENCE:0\n",
                &format!(
                    "#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"{iv_attr}\n"
                ),
            );
            std::fs::write(&playlist, text).unwrap();
        }
    })
    .await;
    let expected: Vec<u64> = crate::util::expected("av25")
        .iter()
        .map(|e| e.ticks)
        .collect();
    for name in ["implied", "explicit"] {
        let state: serde_json::Value =
            serde_json::from_slice(get(&app, &format!("/{name}.json")).await.body()).unwrap();
        assert_eq!(state["state"], "ready", "{state}");
        let segments = state["tracks"][0]["segments"].as_array().unwrap();
        for (seg, ticks) in segments.iter().zip(&expected) {
            assert_eq!(seg["method"], "native", "{name}: {seg}");
            let measured = (seg["duration"].as_f64().unwrap() * 90_000.0).round() as u64;
            assert!(
                measured.abs_diff(*ticks) <= 1,
                "{name}: {measured} vs {ticks}"
            );
        }
    }
}

#[tokio::test]
async fn the_live_rules_hold_for_fmp4_streams() {
    // Two fMP4 variants (ffmpeg, 6 s loop), polled every 0.5 s over five
    // loops on the injected clock.
    let (app, clock, _) = app_on_clock("fmp4-rules").await;
    let root = app.library.config().root.clone();
    crate::util::make_stream_all(&root, "f", &["lo", "hi"], "fmp4_avc");
    app.library.rescan().unwrap();
    app.library
        .get("f")
        .unwrap()
        .settled(Duration::from_secs(30))
        .await;
    let state: serde_json::Value =
        serde_json::from_slice(get(&app, "/f.json").await.body()).unwrap();
    assert_eq!(state["state"], "ready", "{state}");
    let segments = state["tracks"][0]["segments"].as_array().unwrap();
    let disc: Vec<bool> = segments
        .iter()
        .map(|s| s["discontinuity"].as_bool().unwrap())
        .collect();
    let max_ticks = segments
        .iter()
        .map(|s| (s["duration"].as_f64().unwrap() * 90_000.0).round() as u64)
        .max()
        .unwrap();
    let td = state["target_duration"].as_u64().unwrap();
    let mut checker = crate::checker::LiveChecker::new(&disc, td, 6, max_ticks);
    get(&app, "/f_lo.m3u8").await;
    for _ in 0..60 {
        let now = pseudolive::clock::Clock::now_unix(clock.as_ref()).0;
        let mut parsed = Vec::new();
        for p in ["/f_lo.m3u8", "/f_hi.m3u8"] {
            parsed.push(crate::util::parse(get(&app, p).await.body()));
        }
        if let Err(e) = checker.check(now, &parsed) {
            panic!("{e}");
        }
        clock.advance(Ticks(45_000));
    }
}

#[tokio::test]
async fn a_delay_on_a_fixed_fifth_of_the_segments() {
    let (app, clock, _) = app_on_clock("fault-pct").await;
    tokio::time::pause();
    get(&app, "/big_buck_bunny_1000k.m3u8").await; // the timeline starts
    clock.advance(Ticks::from_secs(600));
    let base = "/window=30/fault=delay:2500,pct=20";
    let text = body(&get(&app, &format!("{base}/big_buck_bunny_1000k.m3u8")).await);
    let listed = crate::util::parse(text.as_bytes());
    assert_eq!(listed.segments.len(), 30);
    let mut delayed = 0;
    for seg in &listed.segments {
        let g: u64 = seg.uri[2..seg.uri.find('/').unwrap()].parse().unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            get(&app, &format!("{base}/{}", seg.uri)).await.status(),
            200
        );
        let late = started.elapsed() >= Duration::from_millis(2500);
        assert_eq!(late, pseudolive::options::pct_bucket(g) < 20, "{}", seg.uri);
        delayed += usize::from(late);
    }
    assert!((1..=15).contains(&delayed), "{delayed} of 30 delayed");
}
