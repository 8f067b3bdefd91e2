//! Tests of file serving: RFC 9110 validators, conditionals and ranges
//! through `serve`, and the cache's sharing, budget and revalidation.

use super::*;
use warp::Filter;

/// A temporary library root, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let dir =
            std::env::temp_dir().join(format!("pseudolive-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Root(dir)
    }

    /// Writes `name` with `data`, last modified `age` ago.
    fn write(&self, name: &str, data: &[u8], age: Duration) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).unwrap();
        self.touch(name, SystemTime::now() - age);
        path
    }

    fn touch(&self, name: &str, mtime: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(self.0.join(name))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const OLD: Duration = Duration::from_secs(3600);

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// A GET (or HEAD) of `file` through `serve`, errors turned into responses.
async fn request(
    cache: &Arc<FileCache>,
    method: &str,
    file: &str,
    headers: &[(&str, &str)],
) -> warp::http::Response<Bytes> {
    let cache = cache.clone();
    let parts = vec![file.to_string()];
    let head = method == "HEAD";
    let filter = warp::any()
        .and(warp::header::headers_cloned())
        .then(move |h: HeaderMap| {
            let (cache, parts) = (cache.clone(), parts.clone());
            async move {
                serve(&cache, &parts, &h, head)
                    .await
                    .unwrap_or_else(HttpError::into_response)
            }
        });
    let mut req = warp::test::request().method(method).path("/f");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.reply(&filter).await
}

async fn get(
    cache: &Arc<FileCache>,
    file: &str,
    headers: &[(&str, &str)],
) -> warp::http::Response<Bytes> {
    request(cache, "GET", file, headers).await
}

fn header<'a>(res: &'a warp::http::Response<Bytes>, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn cache(root: &Root) -> Arc<FileCache> {
    Arc::new(FileCache::new(&root.0))
}

fn range(value: &str, len: u64) -> Answer {
    let mut h = HeaderMap::new();
    h.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
    requested_range(&h, len)
}

fn part(start: u64, end: u64) -> Answer {
    Answer::Part { start, end }
}

#[test]
fn ranges() {
    assert_eq!(range("bytes=0-99", 1000), part(0, 99));
    assert_eq!(range("bytes=900-", 1000), part(900, 999));
    assert_eq!(range("bytes=-100", 1000), part(900, 999));
    assert_eq!(range("bytes=990-2000", 1000), part(990, 999));
    assert_eq!(range("bytes=5-5", 1000), part(5, 5));
    assert_eq!(range(" bytes= 0-1 ", 1000), part(0, 1));
    // The unit is case-insensitive.
    assert_eq!(range("Bytes=0-1", 1000), part(0, 1));
    assert_eq!(range("BYTES=2-3", 1000), part(2, 3));
    // A suffix longer than the file is the whole file.
    assert_eq!(range("bytes=-2000", 1000), part(0, 999));
    // Valid but unsatisfiable.
    assert_eq!(range("bytes=1000-", 1000), Answer::Unsatisfiable);
    assert_eq!(range("bytes=1000-1001", 1000), Answer::Unsatisfiable);
    assert_eq!(range("bytes=-0", 1000), Answer::Unsatisfiable);
    assert_eq!(range("bytes=0-", 0), Answer::Unsatisfiable);
    // Invalid, another unit, several ranges: ignored.
    for ignored in [
        "bytes=5-2",
        "bytes=x-y",
        "bytes=1",
        "bytes=--1",
        "bytes=",
        "bytes=0 - 1",
        "bytes=+1-2",
        "bytes=99999999999999999999-",
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes",
    ] {
        assert_eq!(range(ignored, 1000), Answer::Whole, "{ignored}");
    }
    assert_eq!(range("bytes=-5", 0), Answer::Whole);
    assert_eq!(requested_range(&HeaderMap::new(), 10), Answer::Whole);
    let mut two = HeaderMap::new();
    two.append(header::RANGE, HeaderValue::from_static("bytes=0-1"));
    two.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
    assert_eq!(requested_range(&two, 10), Answer::Whole);
}

#[tokio::test]
async fn ranges_through_serve() {
    let root = Root::new("ranges");
    let file = data(1000);
    root.write("a.ts", &file, OLD);
    let cache = cache(&root);
    for (value, status, body) in [
        ("bytes=5-2", 200, &file[..]),
        ("bytes=garbage", 200, &file[..]),
        ("bytes=0-1,5-6", 200, &file[..]),
        ("Bytes=0-1", 206, &file[0..2]),
        ("bytes=-10", 206, &file[990..]),
    ] {
        let res = get(&cache, "a.ts", &[("range", value)]).await;
        assert_eq!(res.status(), status, "{value}");
        assert_eq!(res.body().as_ref(), body, "{value}");
        assert_eq!(header(&res, "content-length"), body.len().to_string());
    }
    let res = get(&cache, "a.ts", &[("range", "Bytes=0-1")]).await;
    assert_eq!(header(&res, "content-range"), "bytes 0-1/1000");
    let res = get(&cache, "a.ts", &[("range", "bytes=1000-")]).await;
    assert_eq!(res.status(), 416);
    assert_eq!(header(&res, "content-range"), "bytes */1000");
}

#[tokio::test]
async fn if_none_match_uses_weak_comparison() {
    let root = Root::new("inm");
    root.write("a.ts", &data(100), OLD);
    let cache = cache(&root);
    let first = get(&cache, "a.ts", &[]).await;
    let etag = header(&first, "etag").to_string();
    assert!(etag.starts_with('"'), "strong: {etag}");
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {weak}");
    for value in [etag.as_str(), weak.as_str(), "*", listed.as_str()] {
        let res = get(&cache, "a.ts", &[("if-none-match", value)]).await;
        assert_eq!(res.status(), 304, "{value}");
        assert!(res.body().is_empty());
        assert_eq!(header(&res, "etag"), etag);
        assert_eq!(
            header(&res, "last-modified"),
            header(&first, "last-modified")
        );
        assert_eq!(header(&res, "cache-control"), SEGMENT_CACHE);
    }
    let res = get(&cache, "a.ts", &[("if-none-match", "\"other\"")]).await;
    assert_eq!((res.status().as_u16(), res.body().len()), (200, 100));
}

#[tokio::test]
async fn if_modified_since_unless_if_none_match() {
    let root = Root::new("ims");
    root.write("a.ts", &data(100), OLD);
    let cache = cache(&root);
    let first = get(&cache, "a.ts", &[]).await;
    let last_modified = header(&first, "last-modified").to_string();
    let modified = httpdate::parse_http_date(&last_modified).unwrap();
    let date = |t: SystemTime| httpdate::fmt_http_date(t);
    let cases = [
        (vec![("if-modified-since", last_modified.clone())], 304),
        (vec![("if-modified-since", date(modified + OLD))], 304),
        (
            vec![("if-modified-since", date(modified - Duration::from_secs(1)))],
            200,
        ),
        (vec![("if-modified-since", "yesterday".to_string())], 200),
        // If-None-Match takes precedence, whatever the date says.
        (
            vec![
                ("if-none-match", "\"other\"".to_string()),
                ("if-modified-since", last_modified.clone()),
            ],
            200,
        ),
    ];
    for (headers, status) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = get(&cache, "a.ts", &h).await;
        assert_eq!(res.status(), status, "{headers:?}");
        if status == 304 {
            assert!(res.body().is_empty());
            assert!(!header(&res, "etag").is_empty());
            assert_eq!(header(&res, "last-modified"), last_modified);
            assert_eq!(header(&res, "cache-control"), SEGMENT_CACHE);
        }
    }
}

#[tokio::test]
async fn if_range_needs_a_current_strong_validator() {
    let root = Root::new("ifrange");
    let file = data(1000);
    root.write("old.ts", &file, OLD);
    root.write("new.ts", &file, Duration::ZERO);
    let cache = cache(&root);
    let first = get(&cache, "old.ts", &[]).await;
    let etag = header(&first, "etag").to_string();
    let last_modified = header(&first, "last-modified").to_string();
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&last_modified).unwrap() - Duration::from_secs(1),
    );
    let weak = format!("W/{etag}");
    for (if_range, status) in [
        (etag.as_str(), 206),
        (last_modified.as_str(), 206),
        ("\"stale\"", 200),
        (weak.as_str(), 200),
        (earlier.as_str(), 200),
        ("not a validator", 200),
    ] {
        let res = get(
            &cache,
            "old.ts",
            &[("range", "bytes=10-19"), ("if-range", if_range)],
        )
        .await;
        assert_eq!(res.status(), status, "{if_range}");
        let body = if status == 206 {
            &file[10..20]
        } else {
            &file[..]
        };
        assert_eq!(res.body().as_ref(), body, "{if_range}");
    }
    // A file modified just now has weak validators: If-Range never holds.
    let fresh = get(&cache, "new.ts", &[]).await;
    let fresh_etag = header(&fresh, "etag").to_string();
    assert!(fresh_etag.starts_with("W/"), "{fresh_etag}");
    for if_range in [
        fresh_etag.trim_start_matches("W/"),
        header(&fresh, "last-modified"),
    ] {
        let res = get(
            &cache,
            "new.ts",
            &[("range", "bytes=10-19"), ("if-range", if_range)],
        )
        .await;
        assert_eq!(res.status(), 200, "{if_range}");
    }
}

#[tokio::test]
async fn if_match_and_if_unmodified_since_give_412() {
    let root = Root::new("ifmatch");
    root.write("a.ts", &data(100), OLD);
    let cache = cache(&root);
    let first = get(&cache, "a.ts", &[]).await;
    let etag = header(&first, "etag").to_string();
    let last_modified = header(&first, "last-modified").to_string();
    let before = httpdate::fmt_http_date(
        httpdate::parse_http_date(&last_modified).unwrap() - Duration::from_secs(60),
    );
    let weak = format!("W/{etag}");
    for (name, value, status) in [
        ("if-match", etag.as_str(), 200),
        ("if-match", "*", 200),
        ("if-match", "\"other\"", 412),
        ("if-match", weak.as_str(), 412),
        ("if-unmodified-since", last_modified.as_str(), 200),
        ("if-unmodified-since", before.as_str(), 412),
    ] {
        let res = get(&cache, "a.ts", &[(name, value)]).await;
        assert_eq!(res.status(), status, "{name}: {value}");
        if status == 412 {
            let text = String::from_utf8_lossy(res.body()).into_owned();
            assert!(
                text.contains("/a.ts") && text.lines().count() == 1,
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn etag_tells_apart_writes_within_one_second() {
    let root = Root::new("etag");
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    root.write("a.ts", b"first", OLD);
    root.touch("a.ts", t);
    let cache = Arc::new(FileCache::with_revalidate(&root.0, Duration::ZERO));
    let one = get(&cache, "a.ts", &[]).await;
    // Same size, same second, other bytes.
    std::fs::write(root.0.join("a.ts"), b"again").unwrap();
    root.touch("a.ts", t + Duration::from_millis(400));
    let two = get(&cache, "a.ts", &[]).await;
    assert_eq!(two.body().as_ref(), b"again");
    assert_eq!(header(&one, "last-modified"), header(&two, "last-modified"));
    assert_ne!(header(&one, "etag"), header(&two, "etag"));
    assert!(!header(&two, "etag").starts_with("W/"));
    // The old ETag no longer validates the new bytes.
    let res = get(&cache, "a.ts", &[("if-none-match", header(&one, "etag"))]).await;
    assert_eq!(res.status(), 200);
}

#[test]
fn validators_are_strong_only_after_a_quiet_period() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let v = |age: Duration| Validators::observe(10, Some(now - age), now);
    assert!(!v(Duration::ZERO).strong);
    assert!(!v(STRONG_AFTER - Duration::from_millis(1)).strong);
    assert!(v(STRONG_AFTER).strong);
    assert!(v(STRONG_AFTER).etag().is_some_and(|t| !t.is_weak()));
    assert!(v(Duration::ZERO).etag().is_some_and(|t| t.is_weak()));
    // A modification time in the future: Last-Modified is capped at now.
    let future = Validators::observe(10, Some(now + OLD), now);
    assert_eq!(future.last_modified, Some(now));
    // Times an HTTP-date cannot hold: no validators (and no panic).
    for mtime in [
        UNIX_EPOCH - Duration::from_secs(1),
        UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE_SECS + 1),
    ] {
        let v = Validators::observe(10, Some(mtime), now);
        assert_eq!((v.etag(), v.last_modified, v.strong), (None, None, false));
    }
}

#[tokio::test]
async fn a_file_dated_before_1970_is_served_without_validators() {
    let root = Root::new("pre1970");
    root.write("a.ts", &data(10), OLD);
    root.touch("a.ts", UNIX_EPOCH - OLD);
    let cache = cache(&root);
    let res = get(
        &cache,
        "a.ts",
        &[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.body().len(), 10);
    assert_eq!(
        (header(&res, "etag"), header(&res, "last-modified")),
        ("", "")
    );
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let root = Root::new("head");
    root.write("a.ts", &data(100), OLD);
    let cache = cache(&root);
    let res = request(&cache, "HEAD", "a.ts", &[]).await;
    assert_eq!(res.status(), 200);
    assert!(res.body().is_empty());
    assert_eq!(header(&res, "content-length"), "100");
    assert_eq!(header(&res, "content-type"), "video/mp2t");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
}

#[tokio::test]
async fn concurrent_misses_read_the_file_once() {
    let root = Root::new("single");
    let file = data(100_000);
    root.write("a.ts", &file, OLD);
    let cache = cache(&root);
    // Each future is polled once before any finishes: all miss together.
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[]),
        get(&cache, "a.ts", &[("range", "bytes=0-9")]),
    );
    for res in [a, b, c, d, e, f, g] {
        assert_eq!(res.body().as_ref(), file.as_slice());
    }
    assert_eq!(h.body().as_ref(), &file[..10]);
    assert_eq!(cache.reads.load(Ordering::Relaxed), 1);
    assert!(cache.state().loading.is_empty());
}

#[tokio::test]
async fn the_budget_counts_bodies_and_evicts_the_least_recently_used() {
    let root = Root::new("lru");
    for name in ["a.ts", "b.ts", "c.ts"] {
        root.write(name, &data(1000), OLD);
    }
    root.write("big.ts", &data(3000), OLD);
    let cache = Arc::new(FileCache::with_limits(
        &root.0,
        CacheLimits {
            revalidate: OLD,
            budget_bytes: 2500,
            whole_file_max_bytes: 16 << 20,
        },
    ));
    for name in ["a.ts", "b.ts", "a.ts", "c.ts"] {
        assert_eq!(get(&cache, name, &[]).await.body().len(), 1000);
    }
    let kept = |cache: &FileCache| {
        let state = cache.state();
        let mut names: Vec<String> = state
            .entries
            .keys()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        (names, state.held_bytes, state.by_use.len())
    };
    // b was used least recently: out when c came in.
    assert_eq!(kept(&cache), (vec!["a.ts".into(), "c.ts".into()], 2000, 2));
    assert_eq!(cache.reads.load(Ordering::Relaxed), 3);
    get(&cache, "a.ts", &[]).await;
    assert_eq!(cache.reads.load(Ordering::Relaxed), 3, "a is a hit");
    get(&cache, "b.ts", &[]).await;
    assert_eq!(cache.reads.load(Ordering::Relaxed), 4, "b was evicted");
    assert_eq!(kept(&cache), (vec!["a.ts".into(), "b.ts".into()], 2000, 2));
    // A body larger than the whole budget is served, never kept.
    assert_eq!(get(&cache, "big.ts", &[]).await.body().len(), 3000);
    assert_eq!(kept(&cache), (vec!["a.ts".into(), "b.ts".into()], 2000, 2));
}

#[tokio::test]
async fn a_cached_file_is_checked_again_after_the_interval() {
    let root = Root::new("revalidate");
    root.write("a.ts", &data(100), OLD);
    root.write("b.ts", &data(100), OLD);
    let patient = Arc::new(FileCache::with_revalidate(&root.0, OLD));
    let eager = Arc::new(FileCache::with_revalidate(&root.0, Duration::ZERO));
    for cache in [&patient, &eager] {
        assert_eq!(get(cache, "a.ts", &[]).await.status(), 200);
    }
    std::fs::remove_file(root.0.join("a.ts")).unwrap();
    // Within the interval the copy in memory is served.
    assert_eq!(get(&patient, "a.ts", &[]).await.status(), 200);
    let res = get(&eager, "a.ts", &[]).await;
    assert_eq!(res.status(), 404);
    assert!(String::from_utf8_lossy(res.body()).contains("/a.ts"));
    // Unchanged files are not read again when checked.
    get(&eager, "b.ts", &[]).await;
    get(&eager, "b.ts", &[]).await;
    assert_eq!(eager.reads.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn weak_validators_become_strong_once_read_after_the_quiet_period() {
    let root = Root::new("quiet");
    root.write("a.ts", b"young", Duration::ZERO);
    let cache = Arc::new(FileCache::with_revalidate(&root.0, Duration::ZERO));
    assert!(header(&get(&cache, "a.ts", &[]).await, "etag").starts_with("W/"));
    root.touch("a.ts", SystemTime::now() - OLD);
    let res = get(&cache, "a.ts", &[]).await;
    assert!(header(&res, "etag").starts_with('"'));
    assert_eq!(cache.reads.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn large_files_are_streamed_with_ranges_and_validators() {
    let root = Root::new("large");
    let file = data(5000);
    root.write("a.ts", &file, OLD);
    let cache = Arc::new(FileCache::with_limits(
        &root.0,
        CacheLimits {
            whole_file_max_bytes: 1000,
            ..CacheLimits::default()
        },
    ));
    let res = get(&cache, "a.ts", &[]).await;
    assert_eq!(res.body().as_ref(), file.as_slice());
    let etag = header(&res, "etag").to_string();
    assert!(etag.starts_with('"'));
    let res = get(
        &cache,
        "a.ts",
        &[("range", "bytes=4000-4009"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.body().as_ref(), &file[4000..4010]);
    assert_eq!(
        get(&cache, "a.ts", &[("if-none-match", &etag)])
            .await
            .status(),
        304
    );
    assert_eq!(cache.reads.load(Ordering::Relaxed), 0);
    assert!(cache.state().entries.is_empty());
}

#[tokio::test]
async fn not_a_file_or_outside_the_root_is_404() {
    let root = Root::new("outside");
    std::fs::create_dir_all(root.0.join("lib/dir")).unwrap();
    root.write("secret.ts", b"SECRET", OLD);
    std::os::unix::fs::symlink(root.0.join("secret.ts"), root.0.join("lib/link.ts")).unwrap();
    let cache = Arc::new(FileCache::new(&root.0.join("lib")));
    for name in ["dir", "link.ts", "missing.ts"] {
        let res = get(&cache, name, &[]).await;
        assert_eq!(res.status(), 404, "{name}");
        assert!(!String::from_utf8_lossy(res.body()).contains("SECRET"));
    }
}
