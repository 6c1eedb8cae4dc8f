//! The load's HTTP/1.1 client: one keep-alive connection that sends a JSON `POST` and reads
//! its answer, and nothing else. The load shares the benchmarked machine's cores with the
//! platform, so it must cost little: all clients run as tasks on one thread, each request is
//! one write and usually one read, and the answer's head is parsed in place (`httparse`).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection idle this long is opened again before the next request: the server closes
/// idle keep-alive connections (after 5 s by default), and a request written to a connection
/// the server is closing would be lost with it.
const IDLE_REOPEN: Duration = Duration::from_secs(2);
/// Most header lines read in an answer.
const MAX_HEADERS: usize = 32;

/// One keep-alive connection to `authority` (`host:port`).
pub struct Connection {
    authority: String,
    stream: Option<TcpStream>,
    last_used: Instant,
    /// Bytes read and not yet consumed.
    buffer: Vec<u8>,
}

/// What came back: the status and the body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Connection {
    pub fn new(authority: &str) -> Self {
        Self {
            authority: authority.to_string(),
            stream: None,
            last_used: Instant::now(),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// `POST`s `body` (JSON) to `path` with the extra header lines `headers` (each ending in
    /// CRLF) and reads the answer whole.
    pub async fn post_json(
        &mut self,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        if self.last_used.elapsed() > IDLE_REOPEN {
            self.stream = None;
        }
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.authority)
                    .await
                    .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
                // Each request is written whole at once; nothing is gained by waiting.
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                self.buffer.clear();
                self.stream.insert(stream)
            }
        };
        let mut request = Vec::with_capacity(256 + body.len());
        request.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                self.authority,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("cannot send to {}: {e}", self.authority))?;
        let answer = read_answer(stream, &mut self.buffer).await;
        self.last_used = Instant::now();
        match answer {
            Ok((answer, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(answer)
            }
            Err(e) => {
                self.stream = None;
                Err(format!("{path}: {e}"))
            }
        }
    }
}

/// Reads one answer from `stream` into `buffer`; returns it, and whether the connection stays
/// open.
async fn read_answer(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<(Answer, bool), String> {
    let (status, head_len, body_len, keep_alive) = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        fill(stream, buffer).await?;
    };
    while buffer.len() < head_len + body_len {
        fill(stream, buffer).await?;
    }
    let body = buffer[head_len..head_len + body_len].to_vec();
    buffer.drain(..head_len + body_len);
    Ok((Answer { status, body }, keep_alive))
}

/// The answer's status, head length, body length and keep-alive, once its head is in `buffer`.
fn parse_head(buffer: &[u8]) -> Result<Option<(u16, usize, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    let status = response.code.ok_or("an answer without a status")?;
    let mut body_len = None;
    let mut keep_alive = response.version == Some(1);
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or_default().trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("a Content-Length of {value:?}"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "an answer sent with Transfer-Encoding {value:?}; the load reads sized answers only"
            ));
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    // A status without a body (1xx, 204, 304) has none; every other answer here is sized.
    let body_len = match (status, body_len) {
        (_, Some(n)) => n,
        (100..=199 | 204 | 304, None) => 0,
        (_, None) => return Err(format!("a {status} answer without a Content-Length")),
    };
    Ok(Some((status, head_len, body_len, keep_alive)))
}

/// Reads what `stream` has into `buffer`; an error if the server closed the connection.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if n == 0 {
        return Err("the server closed the connection before answering".into());
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// `host:port` of an `http://` base URL (a path after it is ignored).
pub fn authority_of(base: &str) -> Result<String, String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("the load speaks plain http:// only, not {base}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{base} names no host"));
    }
    Ok(if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_once_whole_and_its_body_length_taken() {
        let answer = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        assert_eq!(parse_head(&answer[..20]).unwrap(), None, "a partial head");
        let (status, head_len, body_len, keep_alive) = parse_head(answer).unwrap().unwrap();
        assert_eq!((status, body_len, keep_alive), (201, 2, true));
        assert_eq!(&answer[head_len..], b"{}");

        let closing =
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert!(
            !parse_head(closing).unwrap().unwrap().3,
            "Connection: close"
        );
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).unwrap_err().contains("chunked"));
        let without_length = b"HTTP/1.1 201 Created\r\n\r\n";
        assert!(parse_head(without_length).is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn the_authority_is_taken_from_an_http_base() {
        assert_eq!(
            authority_of("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority_of("http://localhost/x").unwrap(), "localhost:80");
        assert!(authority_of("https://example.org").is_err());
        assert!(authority_of("http://").is_err());
    }
}
