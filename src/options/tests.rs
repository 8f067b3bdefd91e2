//! Tests of option and fault parsing, canonical text, layering and fault
//! selection.

use super::*;
use crate::ticks::HZ;

fn setting(segment: &str) -> Setting {
    Options::parse_segment(segment)
        .unwrap_or_else(|e| panic!("{segment}: {e}"))
        .unwrap_or_else(|| panic!("{segment}: not an option"))
}

/// The error for `segment`, which must name `key` and list the valid keys.
fn refused(segment: &str, key: &str) -> OptionError {
    let err = Options::parse_segment(segment).expect_err(segment);
    let text = err.to_string();
    assert!(text.contains(key), "{segment}: {text}");
    assert!(text.contains(VALID_KEYS), "{segment}: {text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    err
}

fn fault(s: &str) -> Fault {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn url(path: &str) -> (Options, Vec<String>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (options, rest) =
        Options::split_leading(&segments).unwrap_or_else(|e| panic!("{path}: {e}"));
    (options, rest.iter().map(|s| s.to_string()).collect())
}

fn request(kind: Resource, variant: &str, msn: Option<u64>, secs: f64) -> FaultRequest<'_> {
    FaultRequest {
        kind,
        variant,
        msn,
        edge_msn: None,
        timeline_ticks: crate::ticks::from_secs(secs),
    }
}

fn segment(msn: u64) -> FaultRequest<'static> {
    request(Resource::Segment, "low", Some(msn), 0.0)
}

#[test]
fn a_segment_without_equals_is_not_an_option() {
    assert_eq!(Options::parse_segment("demo.m3u8"), Ok(None));
    assert_eq!(Options::parse_segment("window"), Ok(None));
}

#[test]
fn window() {
    assert_eq!(setting("window=30"), Setting::Window(30));
    assert_eq!(setting("window=1"), Setting::Window(1));
    assert_eq!(setting("window=10000"), Setting::Window(10_000));
    for bad in [
        "0",
        "10001",
        "-1",
        "+5",
        "5x",
        "",
        " 5",
        "1e3",
        "99999999999999999999999",
    ] {
        refused(&format!("window={bad}"), "window");
    }
}

#[test]
fn dvr() {
    assert_eq!(setting("dvr=3600"), Setting::Dvr(3600));
    assert_eq!(setting("dvr=172800"), Setting::Dvr(172_800));
    for bad in ["0", "172801", "1.5", "1h"] {
        refused(&format!("dvr={bad}"), "dvr");
    }
}

#[test]
fn start() {
    let ms = 1_767_225_600_000;
    assert_eq!(setting("start=1767225600"), Setting::Start(ms));
    assert_eq!(setting("start=2026-01-01T00:00:00Z"), Setting::Start(ms));
    assert_eq!(
        setting("start=2026-01-01T01:00:00%2B01:00"),
        Setting::Start(ms)
    );
    assert_eq!(
        setting("start=2026-01-01T00:00:00.25Z"),
        Setting::Start(ms + 250)
    );
    assert_eq!(setting("start=0"), Setting::Start(0));
    assert_eq!(
        setting("start=253402300799"),
        Setting::Start(253_402_300_799_000)
    );
    for bad in [
        "yesterday",
        "253402300800",
        "1969-12-31T23:59:59Z",
        "2026-01-01",
        "-5",
        "%FF",
    ] {
        refused(&format!("start={bad}"), "start");
    }
}

#[test]
fn ts() {
    assert_eq!(setting("ts=continuous"), Setting::Ts(TsMode::Continuous));
    assert_eq!(setting("ts=source"), Setting::Ts(TsMode::Source));
    for bad in ["Continuous", "", "both"] {
        refused(&format!("ts={bad}"), "ts");
    }
}

#[test]
fn ll() {
    let parts = |part_target_ms| Setting::Ll(LowLatency::Parts { part_target_ms });
    assert_eq!(setting("ll=0"), Setting::Ll(LowLatency::Off));
    assert_eq!(setting("ll=0.000"), Setting::Ll(LowLatency::Off));
    assert_eq!(setting("ll=0.5"), parts(500));
    assert_eq!(setting("ll=1"), parts(1000));
    assert_eq!(setting("ll=0.1"), parts(100));
    assert_eq!(setting("ll=2.125"), parts(2125));
    assert_eq!(setting("ll=10"), parts(10_000));
    for bad in [
        "0.05", "10.001", "0.3333", "1.", ".5", "-1", "abc", "", "1e0",
    ] {
        refused(&format!("ll={bad}"), "ll");
    }
}

#[test]
fn unknown_keys_and_repeats_are_refused() {
    for key in Key::ALL {
        assert!(VALID_KEYS.contains(&format!("{key}=")), "{key}");
        assert_eq!(Key::from_name(key.name()), Some(key));
    }
    let err = refused("foo=1", "\"foo\"");
    assert!(matches!(err, OptionError::UnknownKey { ref key, .. } if key == "foo"));
    refused("=5", "\"\"");
    refused("Window=5", "\"Window\"");
    let segments = ["window=3", "window=4", "demo.m3u8"];
    assert_eq!(
        Options::split_leading(&segments),
        Err(OptionError::Repeated { key: Key::Window })
    );
    for pair in [["fault=none", "fault=404"], ["fault=404", "fault=none"]] {
        let segments = [pair[0], pair[1], "demo.m3u8"];
        let err = Options::split_leading(&segments).unwrap_err();
        assert_eq!(err, OptionError::Repeated { key: Key::Fault });
        assert!(err.to_string().contains(VALID_KEYS));
    }
    let (options, _) = url("/fault=404/fault=503/demo.m3u8");
    assert_eq!(options.faults.map(|f| f.0.len()), Some(2));
}

#[test]
fn options_lead_every_kind_of_url() {
    let (options, rest) = url("/window=5/demo.m3u8");
    assert_eq!(options.window_segments, Some(5));
    assert_eq!(rest, ["demo.m3u8"]);
    let (options, rest) = url("/ts=source/dvr=60/demo_low.m3u8");
    assert_eq!(
        (options.ts, options.dvr_secs),
        (Some(TsMode::Source), Some(60))
    );
    assert_eq!(rest, ["demo_low.m3u8"]);
    let (options, rest) = url("/ll=1/demo/low/seg=1.ts");
    assert_eq!(
        options.ll,
        Some(LowLatency::Parts {
            part_target_ms: 1000
        })
    );
    assert_eq!(rest, ["demo", "low", "seg=1.ts"]);
    // No options; options after the stream are not options; the last
    // segment always names the resource.
    assert_eq!(
        url("/demo.m3u8"),
        (Options::default(), vec!["demo.m3u8".into()])
    );
    let (options, rest) = url("/demo/window=3/x.ts");
    assert!(options.is_empty());
    assert_eq!(rest, ["demo", "window=3", "x.ts"]);
    let (options, rest) = url("/a=b.m3u8");
    assert!(options.is_empty());
    assert_eq!(rest, ["a=b.m3u8"]);
    let empty: [&str; 0] = [];
    assert_eq!(
        Options::split_leading(&empty).map(|(o, r)| (o, r.len())),
        Ok((Options::default(), 0))
    );
    // An unknown key among the leading segments is an error, not a stream.
    assert!(matches!(
        Options::split_leading(&["wndow=3", "demo.m3u8"]),
        Err(OptionError::UnknownKey { .. })
    ));
}

fn everything() -> Options {
    Options {
        window_segments: Some(30),
        dvr_secs: Some(3600),
        start_ms: Some(1_767_225_600_250),
        ts: Some(TsMode::Continuous),
        ll: Some(LowLatency::Parts {
            part_target_ms: 500,
        }),
        faults: Some(Faults(vec![
            fault("delay:2500,pct=20"),
            fault("503,on=playlist,variant=a%2Cb%2F%20c%C3%A9,cycle=60:30-36"),
        ])),
    }
}

#[test]
fn the_path_prefix_is_canonical_and_round_trips() {
    let options = everything();
    let prefix = options.to_path_prefix();
    assert_eq!(
        prefix,
        "window=30/dvr=3600/start=2026-01-01T00:00:00.250Z/ts=continuous/ll=0.5/\
         fault=delay:2500,pct=20/fault=503,on=playlist,variant=a%2Cb%2F%20c%C3%A9,cycle=60:30-36/"
    );
    assert!(
        prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"?#\"<>\\^`{|}[] ".contains(&b)),
        "{prefix}"
    );
    let (back, rest) = url(&format!("/{prefix}demo.m3u8"));
    assert_eq!(back, options);
    assert_eq!(rest, ["demo.m3u8"]);
    let variant = back.faults.as_ref().unwrap().0[1].filters.variant.clone();
    assert_eq!(variant.as_deref(), Some("a,b/ cé"));
    for options in [
        Options::default(),
        Options {
            start_ms: Some(1_767_225_600_000),
            ll: Some(LowLatency::Off),
            faults: Some(Faults::default()),
            ..Options::default()
        },
    ] {
        let prefix = options.to_path_prefix();
        assert_eq!(url(&format!("/{prefix}demo.m3u8")).0, options, "{prefix}");
    }
    assert_eq!(
        Options {
            start_ms: Some(1_767_225_600_000),
            ll: Some(LowLatency::Off),
            faults: Some(Faults::default()),
            ..Options::default()
        }
        .to_path_prefix(),
        "start=1767225600/ll=0/fault=none/"
    );
}

#[test]
fn url_options_win_over_server_defaults() {
    let server = Options {
        window_segments: Some(10),
        dvr_secs: Some(600),
        faults: Some(Faults(vec![fault("503,pct=1")])),
        ..Options::default()
    };
    let (mine, _) = url("/window=3/demo.m3u8");
    let merged = mine.over(&server);
    assert_eq!(merged.window_segments, Some(3));
    assert_eq!(merged.dvr_secs, Some(600));
    assert_eq!(merged.faults, server.faults);
    // A URL's faults replace the server's; fault=none removes them.
    let (mine, _) = url("/fault=404,every=10/demo.m3u8");
    assert_eq!(
        mine.over(&server).faults,
        Some(Faults(vec![fault("404,every=10")]))
    );
    let (mine, _) = url("/fault=none/demo.m3u8");
    let merged = mine.over(&server);
    assert_eq!(merged.faults, Some(Faults::default()));
    assert_eq!(merged.faults.unwrap().select(&segment(0)), None);
    assert_eq!(Options::default().over(&server), server);
}

#[test]
fn value_parsers_serve_as_server_flags() {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Flags {
        #[arg(long, value_parser = parse_window)]
        window: Option<u16>,
        #[arg(long, value_parser = parse_dvr_secs)]
        dvr: Option<u32>,
        #[arg(long, value_parser = parse_start_ms)]
        start: Option<u64>,
        #[arg(long, value_parser = parse_ts)]
        ts: Option<TsMode>,
        #[arg(long, value_parser = parse_ll)]
        ll: Option<LowLatency>,
        #[arg(long, value_parser = parse_fault)]
        fault: Vec<Fault>,
    }
    let flags = Flags::try_parse_from([
        "x",
        "--window",
        "10",
        "--dvr",
        "60",
        "--start",
        "2026-01-01T00:00:00Z",
        "--ts",
        "source",
        "--ll",
        "0.5",
        "--fault",
        "404,every=10",
        "--fault",
        "hang,variant=low res",
    ])
    .unwrap();
    assert_eq!(flags.window, Some(10));
    assert_eq!(flags.dvr, Some(60));
    assert_eq!(flags.start, Some(1_767_225_600_000));
    assert_eq!(flags.ts, Some(TsMode::Source));
    assert_eq!(
        flags.ll,
        Some(LowLatency::Parts {
            part_target_ms: 500
        })
    );
    assert_eq!(
        flags.fault,
        [fault("404,every=10"), fault("hang,variant=low%20res")]
    );
    let err = Flags::try_parse_from(["x", "--window", "0"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("window") && err.contains("1 to 10000"),
        "{err}"
    );
    let err = Flags::try_parse_from(["x", "--fault", "404,every=0"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("every=0"), "{err}");
}

#[test]
fn actions() {
    for (text, action) in [
        ("400", FaultAction::Status(400)),
        ("404", FaultAction::Status(404)),
        ("599", FaultAction::Status(599)),
        ("delay:2500", FaultAction::Delay { delay_ms: 2500 }),
        ("delay:600000", FaultAction::Delay { delay_ms: 600_000 }),
        ("hang", FaultAction::Hang),
        ("slow:300", FaultAction::Slow { rate_kbps: 300 }),
        ("cut", FaultAction::Cut),
        ("stale", FaultAction::Stale),
    ] {
        let f = fault(text);
        assert_eq!(f.action, action, "{text}");
        assert_eq!(f.to_string(), text);
    }
    assert_eq!(fault("slow:300").action.rate_bytes_per_sec(), Some(37_500));
    assert_eq!(fault("cut").action.rate_bytes_per_sec(), None);
    for (bad, words) in [
        ("399", "unknown action \"399\"; actions:"),
        ("600", "unknown action"),
        ("200", "unknown action"),
        ("abc", "unknown action"),
        ("", "unknown action"),
        ("Hang", "unknown action"),
        ("hang:5", "unknown action"),
        ("slow", "unknown action"),
        ("delay:0", "delay:0: expected milliseconds, 1 to 600000"),
        ("delay:", "delay:: expected milliseconds"),
        ("delay:600001", "delay:600001"),
        ("delay:1.5", "delay:1.5"),
        (
            "slow:0",
            "slow:0: expected kilobits per second, 1 to 1000000",
        ),
        ("slow:1000001", "slow:1000001"),
    ] {
        let err = parse_fault(bad).expect_err(bad);
        assert!(
            matches!(
                err,
                OptionError::BadValue {
                    key: Key::Fault,
                    ..
                }
            ),
            "{bad}"
        );
        let err = refused(&format!("fault={bad}"), "fault");
        assert!(err.to_string().contains(words), "{bad}: {err}");
    }
}

#[test]
fn filters() {
    let f = fault("404,on=playlist,variant=hi,every=5,msn=3-9,pct=50,cycle=60:0-10");
    assert_eq!(
        f.filters,
        Filters {
            on: Resource::Playlist,
            variant: Some("hi".into()),
            every: Some(5),
            msn: Some(3..=9),
            pct: Some(50),
            edge: false,
            cycle: Some(Cycle {
                period_secs: 60,
                from_secs: 0,
                to_secs: 10,
            }),
        }
    );
    assert_eq!(fault("404").filters.on, Resource::Segment);
    assert_eq!(fault("404,msn=7").filters.msn, Some(7..=7));
    assert!(fault("404,edge").filters.edge);
    assert_eq!(fault("stale").filters.on, Resource::Playlist);
    assert_eq!(fault("503,on=master").filters.on, Resource::Master);
    for (bad, words) in [
        ("404,on=page", "on=page"),
        ("404,on", "on=segment|playlist|master"),
        ("404,variant=", "empty"),
        ("404,every=0", "every=0"),
        ("404,every=x", "every=x"),
        ("404,msn=9-3", "msn=9-3"),
        ("404,msn=1-", "msn=1-"),
        ("404,msn=a", "msn=a"),
        ("404,pct=101", "pct=101"),
        ("404,pct=-1", "pct=-1"),
        ("404,edge=1", "edge takes no value"),
        ("404,cycle=60:36-30", "cycle=60:36-30"),
        ("404,cycle=60:30-61", "cycle=60:30-61"),
        ("404,cycle=60:30-30", "cycle=60:30-30"),
        ("404,cycle=0:0-0", "cycle=0:0-0"),
        ("404,cycle=60", "cycle=60"),
        ("404,often", "unknown filter \"often\""),
        ("404,every=2,every=3", "every given twice"),
        ("404,on=segment,on=playlist", "on given twice"),
        ("404,edge,edge", "edge given twice"),
        ("stale,on=segment", "stale applies to media playlists only"),
        ("stale,every=2", "stale takes only"),
        ("stale,edge", "stale takes only"),
        ("503,on=master,variant=hi", "on=master takes only"),
        ("503,on=master,pct=5", "on=master takes only"),
        ("503,on=playlist,edge", "edge applies to segments only"),
        ("404,variant=%FF", "not UTF-8"),
    ] {
        let err = refused(&format!("fault={bad}"), "fault");
        assert!(err.to_string().contains(words), "{bad}: {err}");
    }
}

#[test]
fn faults_print_canonically_and_parse_back() {
    for (text, canonical) in [
        ("404,on=segment", "404"),
        ("stale,on=playlist", "stale"),
        ("404,edge,every=2,on=segment", "404,every=2,edge"),
        ("cut,msn=5-5", "cut,msn=5"),
        (
            "hang,cycle=10:0-1,pct=7,msn=1-2,every=3,variant=x,on=segment",
            "hang,variant=x,every=3,msn=1-2,pct=7,cycle=10:0-1",
        ),
        ("slow:300,variant=low res", "slow:300,variant=low%20res"),
        ("503,on=master,cycle=60:0-5", "503,on=master,cycle=60:0-5"),
    ] {
        let f = fault(text);
        assert_eq!(f.to_string(), canonical, "{text}");
        assert_eq!(fault(canonical), f, "{canonical}");
    }
}

#[test]
fn pct_uses_a_fixed_documented_hash() {
    // SplitMix64 seeded with 0: its first two published outputs.
    assert_eq!(fault::splitmix64(0), 0xE220_A839_7B1D_CDAF);
    assert_eq!(
        fault::splitmix64(0x9E37_79B9_7F4A_7C15),
        0x6E78_9E6A_A1B9_65F4
    );
    assert_eq!(pct_bucket(0), (0xE220_A839_7B1D_CDAF_u64 % 100) as u8);
    let hits = |p: &str| -> Vec<u64> {
        let faults = Faults(vec![fault(&format!("404,pct={p}"))]);
        (0..10_000)
            .filter(|m| faults.select(&segment(*m)).is_some())
            .collect()
    };
    let twenty = hits("20");
    assert!((1800..=2200).contains(&twenty.len()), "{}", twenty.len());
    let ten = hits("10");
    assert!(
        ten.iter().all(|m| twenty.contains(m)),
        "raising pct only adds"
    );
    assert!(hits("0").is_empty());
    assert_eq!(hits("100").len(), 10_000);
    assert_eq!(hits("20"), twenty, "the same numbers every time");
    // No number, no pct.
    let unknown = request(Resource::Segment, "low", None, 0.0);
    assert_eq!(Faults(vec![fault("404,pct=100")]).select(&unknown), None);
}

#[test]
fn each_filter_selects() {
    let one = |text: &str, req: &FaultRequest| Faults(vec![fault(text)]).select(req).is_some();
    // on
    let playlist = request(Resource::Playlist, "low", Some(20), 0.0);
    let master = request(Resource::Master, "", None, 0.0);
    assert!(one("404", &segment(20)));
    assert!(!one("404", &playlist) && !one("404", &master));
    assert!(one("404,on=playlist", &playlist) && !one("404,on=playlist", &segment(20)));
    assert!(one("404,on=master", &master) && !one("404,on=master", &playlist));
    // variant
    assert!(one("404,variant=low", &segment(1)));
    assert!(!one("404,variant=high", &segment(1)));
    // every, msn
    assert!(one("404,every=10", &segment(20)) && !one("404,every=10", &segment(21)));
    assert!(one("404,on=playlist,every=10", &playlist));
    assert!(one("404,msn=7", &segment(7)) && !one("404,msn=7", &segment(8)));
    assert!(one("404,msn=3-5", &segment(3)) && one("404,msn=3-5", &segment(5)));
    assert!(!one("404,msn=3-5", &segment(6)));
    let unknown = request(Resource::Segment, "low", None, 0.0);
    assert!(!one("404,every=1", &unknown) && !one("404,msn=0-99", &unknown));
    // edge
    let at_edge = FaultRequest {
        edge_msn: Some(20),
        ..segment(20)
    };
    let behind = FaultRequest {
        edge_msn: Some(21),
        ..segment(20)
    };
    assert!(one("404,edge", &at_edge) && !one("404,edge", &behind));
    assert!(!one("404,edge", &segment(20)));
    // cycle: seconds 30 (included) to 36 (excluded) of every minute.
    let at = |secs: f64| request(Resource::Segment, "low", Some(1), secs);
    let cycle = "404,cycle=60:30-36";
    assert!(!one(cycle, &at(29.99)));
    assert!(one(cycle, &at(30.0)) && one(cycle, &at(35.99)));
    assert!(!one(cycle, &at(36.0)));
    assert!(one(cycle, &at(90.0)) && !one(cycle, &at(100.0)));
    // All filters must hold; the first matching fault wins.
    assert!(!one("404,every=10,variant=high", &segment(20)));
    let faults = Faults(vec![fault("404,msn=5"), fault("503"), fault("500")]);
    assert_eq!(
        faults.select(&segment(5)).map(|f| f.action),
        Some(FaultAction::Status(404))
    );
    assert_eq!(
        faults.select(&segment(6)).map(|f| f.action),
        Some(FaultAction::Status(503))
    );
}

#[test]
fn stale_freezes_at_the_start_of_its_interval() {
    let cycled = fault("stale,cycle=120:60-75");
    let secs = |s: u64| s * HZ;
    assert_eq!(cycled.stale_at_ticks(secs(70)), Some(secs(60)));
    assert_eq!(cycled.stale_at_ticks(secs(60)), Some(secs(60)));
    assert_eq!(cycled.stale_at_ticks(secs(190)), Some(secs(180)));
    // Between intervals: the last one began (none yet: the timeline start).
    assert_eq!(cycled.stale_at_ticks(secs(100)), Some(secs(60)));
    assert_eq!(cycled.stale_at_ticks(secs(130)), Some(secs(60)));
    assert_eq!(cycled.stale_at_ticks(secs(10)), Some(0));
    let forever = fault("stale,variant=hi");
    assert_eq!(forever.stale_at_ticks(secs(12_345)), Some(0));
    assert_eq!(fault("404").stale_at_ticks(secs(70)), None);
}

#[test]
fn the_five_examples() {
    let faults = |path: &str| {
        let (options, rest) = url(path);
        assert_eq!(rest, ["demo.m3u8"], "{path}");
        (options.clone(), options.faults.unwrap_or_default())
    };
    let action = |f: &Faults, req: &FaultRequest| f.select(req).map(|f| f.action);

    let (_, f) = faults("/fault=404,every=10/demo.m3u8");
    assert_eq!(action(&f, &segment(30)), Some(FaultAction::Status(404)));
    assert_eq!(action(&f, &segment(31)), None);
    assert_eq!(
        action(&f, &request(Resource::Playlist, "low", Some(30), 0.0)),
        None
    );

    let (_, f) = faults("/fault=503,on=playlist,cycle=60:30-36/demo.m3u8");
    let playlist_at = |secs| request(Resource::Playlist, "low", Some(9), secs);
    assert_eq!(
        action(&f, &playlist_at(31.0)),
        Some(FaultAction::Status(503))
    );
    assert_eq!(
        action(&f, &playlist_at(95.5)),
        Some(FaultAction::Status(503))
    );
    assert_eq!(action(&f, &playlist_at(36.0)), None);
    assert_eq!(
        action(&f, &request(Resource::Segment, "low", Some(9), 31.0)),
        None
    );

    let (_, f) = faults("/fault=stale,cycle=120:60-75/demo.m3u8");
    let playlist_at = |secs| request(Resource::Playlist, "low", Some(9), secs);
    let stale = f.select(&playlist_at(190.0)).expect("stale at 190 s");
    assert_eq!(stale.action, FaultAction::Stale);
    assert_eq!(stale.stale_at_ticks(190 * HZ), Some(180 * HZ));
    assert_eq!(action(&f, &playlist_at(200.0)), None);
    assert_eq!(action(&f, &playlist_at(75.0)), None);
    assert_eq!(
        action(&f, &request(Resource::Segment, "low", Some(9), 200.0)),
        None
    );

    let (_, f) = faults("/fault=slow:300,variant=high/demo.m3u8");
    let high = request(Resource::Segment, "high", Some(4), 0.0);
    assert_eq!(
        f.select(&high).and_then(|f| f.action.rate_bytes_per_sec()),
        Some(37_500)
    );
    assert_eq!(action(&f, &segment(4)), None);

    let (options, f) = faults("/window=30/fault=delay:2500,pct=20/demo.m3u8");
    assert_eq!(options.window_segments, Some(30));
    let delayed: Vec<u64> = (0..1000)
        .filter(|m| action(&f, &segment(*m)) == Some(FaultAction::Delay { delay_ms: 2500 }))
        .collect();
    assert!((150..=250).contains(&delayed.len()), "{}", delayed.len());
    assert!(delayed.iter().all(|m| pct_bucket(*m) < 20));
    assert_eq!(
        options.to_path_prefix(),
        "window=30/fault=delay:2500,pct=20/"
    );
}

#[test]
fn hand_built_values_do_not_panic() {
    let odd = Fault {
        action: FaultAction::Stale,
        filters: Filters {
            on: Resource::Segment,
            variant: None,
            every: Some(0),
            msn: None,
            pct: Some(200),
            edge: false,
            cycle: Some(Cycle {
                period_secs: 0,
                from_secs: 5,
                to_secs: 1,
            }),
        },
    };
    let req = FaultRequest {
        timeline_ticks: u64::MAX,
        ..segment(u64::MAX)
    };
    // every=0 never holds (instead of dividing by zero); a zero period counts as 1 s.
    assert_eq!(Faults(vec![odd.clone()]).select(&req), None);
    assert!(odd.stale_at_ticks(u64::MAX).is_some());
    assert!(!odd.to_string().is_empty());
}

proptest::proptest! {
    /// Whatever the text, parsing answers without panicking; what parses
    /// prints canonically and parses back to the same value.
    #[test]
    fn any_segment_parses_or_is_refused(text in "\\PC{0,40}") {
        if let Ok(Some(setting)) = Options::parse_segment(&text) {
            let mut options = Options::default();
            options.apply(setting).unwrap();
            let prefix = options.to_path_prefix();
            let segments: Vec<&str> = prefix.split('/').collect();
            proptest::prop_assert_eq!(Options::split_leading(&segments).map(|(o, _)| o), Ok(options));
        }
    }

    #[test]
    fn built_faults_round_trip(
        action in proptest::sample::select(vec![
            "404", "503", "delay:1", "delay:2500", "hang", "slow:300", "cut", "stale",
        ]),
        on in proptest::option::of(proptest::sample::select(vec!["segment", "playlist", "master"])),
        variant in proptest::option::of("[a-z é,/=%]{1,8}"),
        every in proptest::option::of(0u64..30),
        msn in proptest::option::of((0u64..50, 0u64..50)),
        pct in proptest::option::of(0u8..=120),
        edge in proptest::bool::ANY,
        cycle in proptest::option::of((0u32..100, 0u32..100, 0u32..100)),
        msn_req in 0u64..100,
        secs in 0u64..1000,
    ) {
        let mut text = action.to_string();
        if let Some(on) = on { text += &format!(",on={on}"); }
        if let Some(v) = &variant {
            let encoded = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
            text += &format!(",variant={encoded}");
        }
        if let Some(n) = every { text += &format!(",every={n}"); }
        if let Some((a, b)) = msn { text += &format!(",msn={a}-{b}"); }
        if let Some(p) = pct { text += &format!(",pct={p}"); }
        if edge { text += ",edge"; }
        if let Some((s, a, b)) = cycle { text += &format!(",cycle={s}:{a}-{b}"); }
        if let Ok(f) = text.parse::<Fault>() {
            proptest::prop_assert_eq!(f.to_string().parse::<Fault>(), Ok(f.clone()));
            proptest::prop_assert_eq!(&f.filters.variant, &variant);
            let req = FaultRequest {
                kind: f.filters.on,
                variant: variant.as_deref().unwrap_or(""),
                msn: Some(msn_req),
                edge_msn: Some(msn_req),
                timeline_ticks: secs * HZ,
            };
            let holds = every.is_none_or(|n| msn_req % n == 0)
                && msn.is_none_or(|(a, b)| (a..=b).contains(&msn_req))
                && pct.is_none_or(|p| pct_bucket(msn_req) < p)
                && cycle.is_none_or(|(s, a, b)| (u64::from(a)..u64::from(b)).contains(&(secs % u64::from(s))));
            proptest::prop_assert_eq!(f.matches(&req), holds, "{}", text);
        }
    }
}
