//! A lean HTTP/1.1 client connection for the Omnibus HTTP driver's hot loops.
//!
//! One keep-alive TCP connection, one request at a time, written and read by the task that
//! calls it. Client and brokers share the bench machine's cores, so a heavy client lowers
//! every figure it measures: reqwest (a pool, tower layers, and a connection task that every
//! request wakes) cost the jobs workers ~36 µs of CPU per job on the 2-core machine, more
//! than the redis crate or async-nats spend per command for the peers. Requests are written
//! by hand (a few headers); responses are parsed with `httparse`, the parser hyper itself
//! uses, and bodies are read by `Content-Length` or chunked encoding.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::{BenchError, Result};

/// Response head bytes accepted before the connection is given up as broken.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Headers parsed per response (the broker sends a handful).
const HEADERS_MAX: usize = 32;

/// One keep-alive connection to the broker's HTTP listener.
#[derive(Debug)]
pub struct Http1 {
    stream: TcpStream,
    host: String,
    /// Bytes read and not yet consumed (the start of the next response, if any).
    buffer: Vec<u8>,
    /// The request being written; kept to reuse its allocation.
    request: Vec<u8>,
}

/// A status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Http1 {
    pub async fn connect(address: &str) -> Result<Http1> {
        let stream = TcpStream::connect(address).await?;
        // Requests are written whole; Nagle would only hold the next one back.
        stream.set_nodelay(true)?;
        Ok(Http1 {
            stream,
            host: address.to_string(),
            buffer: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(1024),
        })
    }

    /// `GET path`; a status that is not 2xx is an error carrying the body.
    pub async fn get(&mut self, path: &str) -> Result<Answer> {
        self.request.clear();
        let head = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n\r\n", self.host);
        self.request.extend_from_slice(head.as_bytes());
        self.round_trip().await
    }

    /// `POST path` with a JSON body, asking for the short answer when `minimal`
    /// (`Prefer: return=minimal`); a status that is not 2xx is an error carrying the body.
    pub async fn post(&mut self, path: &str, body: &[u8], minimal: bool) -> Result<Answer> {
        self.request.clear();
        let prefer = if minimal {
            "prefer: return=minimal\r\n"
        } else {
            ""
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n{prefer}\r\n",
            self.host,
            body.len()
        );
        self.request.extend_from_slice(head.as_bytes());
        self.request.extend_from_slice(body);
        self.round_trip().await
    }

    async fn round_trip(&mut self) -> Result<Answer> {
        self.stream.write_all(&self.request).await?;
        let answer = self.read_response().await?;
        if !(200..300).contains(&answer.status) {
            return Err(BenchError::Broker {
                system: "omnibus-http",
                status: answer.status.to_string(),
                body: String::from_utf8_lossy(&answer.body).into_owned(),
            });
        }
        Ok(answer)
    }

    async fn read_response(&mut self) -> Result<Answer> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer) {
                Ok(httparse::Status::Complete(head_length)) => {
                    let status = response.code.unwrap_or(0);
                    let framing = framing(response.headers)?;
                    let body = self.read_body(head_length, framing).await?;
                    return Ok(Answer { status, body });
                }
                Ok(httparse::Status::Partial) if self.buffer.len() < HEAD_BYTES_MAX => {
                    self.fill().await?;
                }
                Ok(httparse::Status::Partial) => return Err(broken("response head too long")),
                Err(error) => return Err(broken(&format!("unreadable response: {error}"))),
            }
        }
    }

    /// Reads more bytes into the buffer; the broker closing the connection is an error.
    async fn fill(&mut self) -> Result<()> {
        if super::read_into(&mut self.stream, &mut self.buffer, 16 * 1024).await? == 0 {
            return Err(broken("the broker closed the connection"));
        }
        Ok(())
    }

    async fn read_body(&mut self, head_length: usize, framing: Framing) -> Result<Vec<u8>> {
        match framing {
            Framing::Length(length) => {
                while self.buffer.len() < head_length + length {
                    self.fill().await?;
                }
                let body = self.buffer[head_length..head_length + length].to_vec();
                self.buffer.drain(..head_length + length);
                Ok(body)
            }
            Framing::Chunked => {
                self.buffer.drain(..head_length);
                let mut body = Vec::new();
                loop {
                    let (size, line_length) = loop {
                        match httparse::parse_chunk_size(&self.buffer) {
                            Ok(httparse::Status::Complete((line, size))) => break (size, line),
                            Ok(httparse::Status::Partial) => self.fill().await?,
                            Err(_) => return Err(broken("bad chunk size")),
                        }
                    };
                    let size = usize::try_from(size).map_err(|_| broken("chunk too large"))?;
                    // The chunk and its CRLF (the last chunk: the empty trailer's CRLF).
                    while self.buffer.len() < line_length + size + 2 {
                        self.fill().await?;
                    }
                    body.extend_from_slice(&self.buffer[line_length..line_length + size]);
                    self.buffer.drain(..line_length + size + 2);
                    if size == 0 {
                        return Ok(body);
                    }
                }
            }
        }
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
}

fn framing(headers: &[httparse::Header<'_>]) -> Result<Framing> {
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| broken("bad content-length"))?;
            return Ok(Framing::Length(length));
        }
        if header.name.eq_ignore_ascii_case("transfer-encoding")
            && header.value.eq_ignore_ascii_case(b"chunked")
        {
            return Ok(Framing::Chunked);
        }
    }
    // No body framing on a keep-alive response: no body (204, or an empty 200).
    Ok(Framing::Length(0))
}

fn broken(why: &str) -> BenchError {
    BenchError::Broker {
        system: "omnibus-http",
        status: "broken response".into(),
        body: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// Serves canned responses, one per request read, on a real loopback socket.
    async fn serve(responses: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 4096];
            for response in responses {
                let _ = socket.read(&mut request).await;
                // Written in two pieces so the client must read more than once.
                let (first, rest) = response.split_at(response.len() / 2);
                socket.write_all(first).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                socket.write_all(rest).await.expect("write");
            }
        });
        address
    }

    #[tokio::test]
    async fn reads_length_chunked_and_empty_bodies_on_one_connection() {
        let address = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"b\r\n3\r\n\":2\r\n1\r\n}\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut connection = Http1::connect(&address).await.expect("connect");
        let first = connection.post("/x", b"{}", false).await.expect("first");
        assert_eq!(
            (first.status, first.body.as_slice()),
            (200, &b"{\"a\":1}"[..])
        );
        let second = connection.get("/y").await.expect("second");
        assert_eq!(second.body, b"{\"b\":2}");
        let third = connection.post("/z", b"{}", true).await.expect("third");
        assert_eq!((third.status, third.body.len()), (204, 0));
    }

    #[tokio::test]
    async fn an_error_status_carries_the_body() {
        let address = serve(vec![
            b"HTTP/1.1 409 Conflict\r\ncontent-length: 5\r\n\r\nstale",
        ])
        .await;
        let mut connection = Http1::connect(&address).await.expect("connect");
        match connection.post("/x", b"{}", false).await {
            Err(BenchError::Broker { status, body, .. }) => {
                assert_eq!((status.as_str(), body.as_str()), ("409", "stale"));
            }
            other => panic!("expected the broker's error, got {other:?}"),
        }
    }
}
