//! A local archive mirror on 127.0.0.1 for tests: fixed paths, fixed bytes
//! and a body that stalls half-way. Nothing leaves the machine.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// What a path answers.
#[derive(Clone)]
pub enum Body {
    /// The whole body.
    Bytes(Vec<u8>),
    /// Announces `total` bytes, sends `first`, then goes silent.
    Stall { first: Vec<u8>, total: usize },
}

/// Serves `routes` until the test process ends; returns the base URL.
pub fn serve(routes: BTreeMap<String, Body>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut conn = conn;
                match routes.get(&path) {
                    Some(Body::Bytes(b)) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        );
                        let _ = conn.write_all(b);
                    }
                    Some(Body::Stall { first, total }) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = conn.write_all(first);
                        let _ = conn.flush();
                        std::thread::sleep(Duration::from_secs(600));
                    }
                    None => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    base
}

/// A gzip-compressed `Packages` index.
pub fn packages_gz(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// Every file below `dir` as a route `<prefix>/<relative path>`.
pub fn routes_of_dir(dir: &std::path::Path, prefix: &str) -> BTreeMap<String, Body> {
    let mut routes = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                routes.insert(
                    format!("{prefix}/{rel}"),
                    Body::Bytes(std::fs::read(&path).unwrap()),
                );
            }
        }
    }
    routes
}
