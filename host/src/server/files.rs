//! Static files: a plugin's `[static]` directory served on plain HTTP GET
//! and HEAD under its route (`index.html` at the route itself and at every
//! directory path ending in `/`).
//!
//! - **No escape**: the request path is percent-decoded and split into
//!   segments; `.`, `..`, hidden names (`.git`, `.env`), backslashes and NUL
//!   are refused with 404 before the disk is touched, and the file found is
//!   canonicalized and must still lie under the (canonical) directory, so a
//!   symlink cannot lead out either.
//! - **Bounded**: a file over `max-file-bytes` is refused with 403; a served
//!   file is streamed in 64 KiB chunks, so memory per request does not grow
//!   with the file.
//! - **Caching**: a strong `ETag` from the file's length and modification
//!   time (as nginx does, so a 304 needs no read) and `Last-Modified`;
//!   `If-None-Match` (or, without it, `If-Modified-Since`) answers 304.
//!   `Cache-Control: no-cache` makes browsers revalidate, so a page changed
//!   on disk (or with a new plugin version) is seen on the next load.
//! - **Types** from the extension (`mime_guess`), `charset=utf-8` on text,
//!   and `X-Content-Type-Options: nosniff`.

use super::http::{Body, full, plain};
use crate::log_limit::LogLimit;
use crate::manifest::StaticFiles;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, LOCATION,
};
use hyper::{Method, Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

/// The chunk a served file is streamed in.
const CHUNK: usize = 64 * 1024;

/// Files refused for their size are logged at most every 10 s.
static TOO_LARGE: LogLimit = LogLimit::new(Duration::from_secs(10));

/// What a request for `rest` (the path below the route) found.
#[derive(Debug)]
enum Lookup {
    /// A regular file, opened.
    File { file: std::fs::File, len: u64, modified: SystemTime, path: PathBuf },
    /// A directory asked for without its trailing `/`.
    Directory,
    /// A file over the bound.
    TooLarge { len: u64, path: PathBuf },
    /// Nothing that may be served.
    NotFound,
}

/// Answers a GET or HEAD for `path`, `rest` being its part below the route
/// (empty or starting with `/`).
pub(super) async fn serve(
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    rest: &str,
    files: Arc<StaticFiles>,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "static files answer GET and HEAD only\n");
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let Some(relative) = relative_path(rest) else {
        return not_found();
    };
    let found = tokio::task::spawn_blocking(move || find(&files, relative)).await.unwrap_or(Lookup::NotFound);
    match found {
        Lookup::File { file, len, modified, path } => {
            let tag = etag(len, modified);
            let mut resp = if not_modified(headers, &tag, modified) {
                let mut resp = Response::new(Body::default());
                *resp.status_mut() = StatusCode::NOT_MODIFIED;
                resp
            } else {
                let mut resp = if method == Method::HEAD {
                    Response::new(Body::default())
                } else {
                    let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file).take(len), CHUNK);
                    Response::new(StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync())
                };
                resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
                resp.headers_mut().insert(CONTENT_TYPE, content_type(&path));
                resp.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
                resp
            };
            let headers = resp.headers_mut();
            if let Ok(tag) = HeaderValue::from_str(&tag) {
                headers.insert(ETAG, tag);
            }
            if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
                headers.insert(LAST_MODIFIED, date);
            }
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Lookup::Directory => {
            let mut resp = Response::new(full(Bytes::new()));
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            if let Ok(location) = HeaderValue::from_str(&format!("{path}/")) {
                resp.headers_mut().insert(LOCATION, location);
            }
            resp
        }
        Lookup::TooLarge { len, path } => {
            if let Some(held_back) = TOO_LARGE.allow() {
                tracing::warn!(file = %path.display(), len, held_back, "static file over max-file-bytes; refused with 403");
            }
            plain(StatusCode::FORBIDDEN, "file too large to be served\n")
        }
        Lookup::NotFound => not_found(),
    }
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// The file `rest` names below the directory, or `None` if it may not be
/// served whatever is on disk. A path ending in `/` (or empty) names its
/// directory's `index.html`.
fn relative_path(rest: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return None;
        }
        relative.push(segment);
    }
    if decoded.is_empty() || decoded.ends_with('/') {
        relative.push("index.html");
    }
    Some(relative)
}

/// Looks `relative` up under the directory (blocking file system calls).
fn find(files: &StaticFiles, relative: PathBuf) -> Lookup {
    let Ok(path) = files.dir.join(relative).canonicalize() else {
        return Lookup::NotFound;
    };
    // Also refuses a symlink out of the directory.
    if !path.starts_with(&files.dir) {
        return Lookup::NotFound;
    }
    let Ok(meta) = std::fs::metadata(&path) else {
        return Lookup::NotFound;
    };
    if meta.is_dir() {
        return Lookup::Directory;
    }
    if !meta.is_file() {
        return Lookup::NotFound;
    }
    if meta.len() > files.max_file_bytes {
        return Lookup::TooLarge { len: meta.len(), path };
    }
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    match std::fs::File::open(&path) {
        Ok(file) => Lookup::File { file, len: meta.len(), modified, path },
        Err(_) => Lookup::NotFound,
    }
}

/// A strong validator from the length and modification time.
fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("\"{len:x}-{nanos:x}\"")
}

/// Whether the client's cached copy (of the file tagged `current`) is
/// current: `If-None-Match` decides when present (weak comparison, `*`
/// matches), else `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, current: &str, modified: SystemTime) -> bool {
    let mut tags = headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).peekable();
    if tags.peek().is_some() {
        return tags
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == current);
    }
    let since =
        headers.get(IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v).ok());
    // HTTP dates have whole seconds.
    let modified_secs = modified.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    since.is_some_and(|since| since.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() >= modified_secs)
}

/// The file's type from its extension, with a charset on text.
fn content_type(path: &std::path::Path) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml")
        || mime.suffix().is_some_and(|s| s == mime_guess::mime::XML || s == mime_guess::mime::JSON);
    let value = if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn maps_paths_below_the_route() {
        assert_eq!(relative_path("").unwrap(), Path::new("index.html"));
        assert_eq!(relative_path("/").unwrap(), Path::new("index.html"));
        assert_eq!(relative_path("/app.js").unwrap(), Path::new("app.js"));
        assert_eq!(relative_path("/img//a%20b.png").unwrap(), Path::new("img/a b.png"));
        assert_eq!(relative_path("/docs/").unwrap(), Path::new("docs/index.html"));
    }

    #[test]
    fn refuses_paths_that_could_escape_or_are_hidden() {
        for rest in
            ["/../plugin.toml", "/a/../../x", "/%2e%2e/x", "/.env", "/.git/config", "/a\\..\\b", "/a%00b", "/%ff"]
        {
            assert_eq!(relative_path(rest), None, "{rest}");
        }
    }

    #[test]
    fn types_text_with_a_charset() {
        let ty = |p: &str| content_type(Path::new(p)).to_str().unwrap().to_owned();
        assert_eq!(ty("index.html"), "text/html; charset=utf-8");
        assert!(ty("app.js").ends_with("javascript; charset=utf-8"), "{}", ty("app.js"));
        assert_eq!(ty("logo.png"), "image/png");
        assert_eq!(ty("data.bin"), "application/octet-stream");
        assert_eq!(ty("icon.svg"), "image/svg+xml; charset=utf-8");
    }

    #[test]
    fn revalidates_by_etag_first() {
        let modified = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tag = etag(10, modified);
        let mut headers = HeaderMap::new();
        let longer = etag(11, modified);
        assert!(!not_modified(&headers, &tag, modified));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap());
        assert!(not_modified(&headers, &tag, modified));
        assert!(!not_modified(&headers, &longer, modified), "a changed length is a changed file");
        headers.insert(IF_MODIFIED_SINCE, HeaderValue::from_str(&httpdate::fmt_http_date(modified)).unwrap());
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&headers, &tag, modified), "If-None-Match decides when present");
        headers.remove(IF_NONE_MATCH);
        assert!(not_modified(&headers, &tag, modified));
        assert!(!not_modified(&headers, &tag, modified + Duration::from_secs(1)));
    }
}
