//! WebSocket frames straight on a TCP socket, for the benchmark's load server
//! ([`crate::loadsrv`]) and the trivial client of the ceiling ([`crate::trivial`]).
//!
//! A WebSocket library hands each message through a stream, a sink and a buffer of its
//! own; at a million small frames a second that per-frame work is the limit, not the
//! connector being measured. Here a connection is two byte buffers on a non-blocking
//! socket: frames are parsed in place from what was read (headers with tungstenite's
//! [`FrameHeader`], payloads unmasked in place) and appended to one output buffer that is
//! written with as few system calls as the socket allows. No task hand-offs, no copies but
//! the socket's. Reading never waits on writing: [`Conn::io`] reads whenever the socket has
//! data, so neither side can block the other with full buffers.
//!
//! Client frames are masked, as RFC 6455 requires, with the all-zero key (legal, and it
//! leaves the payload as it is), so a client's frames can be made once and sent many times.

use std::io;
use std::ops::Range;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
pub use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

/// Bytes read per system call at most (and the buffer's growth step).
const READ_CHUNK: usize = 256 * 1024;
/// A frame larger than this ends the connection (the benchmark's frames are small).
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// The longest HTTP upgrade request or answer read.
const MAX_HEAD: usize = 16 * 1024;
/// The fixed `Sec-WebSocket-Key` of the trivial client (RFC 6455's example).
const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A text frame's opcode.
pub const TEXT: OpCode = OpCode::Data(Data::Text);
/// A binary frame's opcode.
pub const BINARY: OpCode = OpCode::Data(Data::Binary);
/// A continuation frame's opcode.
pub const CONTINUE: OpCode = OpCode::Data(Data::Continue);
/// A ping's opcode.
pub const PING: OpCode = OpCode::Control(Control::Ping);
/// A pong's opcode.
pub const PONG: OpCode = OpCode::Control(Control::Pong);
/// A close frame's opcode.
pub const CLOSE: OpCode = OpCode::Control(Control::Close);

/// One frame read: its opcode, whether it ends its message, and its payload's place in
/// [`Input::bytes`].
#[derive(Debug, Clone)]
pub struct Frame {
    /// The opcode.
    pub opcode: OpCode,
    /// Whether it is the last frame of its message.
    pub fin: bool,
    /// Where its (unmasked) payload lies in the input buffer.
    pub payload: Range<usize>,
}

/// What has been read and not yet consumed.
#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    /// The buffer frames point into.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The next complete frame, if one has arrived; its payload stays valid until the
    /// next read from the socket.
    ///
    /// # Errors
    ///
    /// A malformed or oversized frame.
    pub fn frame(&mut self) -> Result<Option<Frame>, String> {
        let avail = &mut self.buf[self.start..self.end];
        let Some(head) = Head::parse(avail)? else {
            return Ok(None);
        };
        let (at, len) = (head.len, head.payload);
        if avail.len() < at + len {
            return Ok(None);
        }
        if let Some(mask) = head.mask {
            unmask(&mut avail[at..at + len], mask);
        }
        let payload = self.start + at..self.start + at + len;
        self.start += at + len;
        Ok(Some(Frame {
            opcode: OpCode::from(head.first & 0x0f),
            fin: head.first & 0x80 != 0,
            payload,
        }))
    }

    /// Room to read into: moves what is unconsumed to the front first when that frees
    /// half the buffer.
    fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Reads once from a blocking `reader` into the buffer; 0 at the end of the stream.
    ///
    /// # Errors
    ///
    /// The read failed.
    pub fn read_from(&mut self, reader: &mut impl std::io::Read) -> io::Result<usize> {
        let n = reader.read(self.spare())?;
        self.end += n;
        Ok(n)
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// XORs the payload with the mask, eight bytes at a time.
/// A frame header as RFC 6455 (section 5.2) lays it out. Parsed here rather than with
/// tungstenite's `FrameHeader::parse`, which reads through `io::Read` a byte at a time:
/// about 40 ns a frame, a third of the load server's whole cost per notification.
struct Head {
    /// FIN, the reserved bits and the opcode.
    first: u8,
    /// The header's length.
    len: usize,
    /// The payload's length.
    payload: usize,
    mask: Option<[u8; 4]>,
}

impl Head {
    /// The header at the start of `b`, if all of it has arrived.
    fn parse(b: &[u8]) -> Result<Option<Head>, String> {
        let [first, second, ..] = *b else {
            return Ok(None);
        };
        if first & 0x70 != 0 {
            return Err("reserved bits set (no extension was agreed)".into());
        }
        let (extra, short) = match second & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(usize::from(n))),
        };
        let masked = second & 0x80 != 0;
        let len = 2 + extra + if masked { 4 } else { 0 };
        if b.len() < len {
            return Ok(None);
        }
        let payload = match short {
            Some(n) => n,
            None => {
                let mut be = [0u8; 8];
                be[8 - extra..].copy_from_slice(&b[2..2 + extra]);
                usize::try_from(u64::from_be_bytes(be))
                    .ok()
                    .filter(|l| *l <= MAX_FRAME)
                    .ok_or("frame too large")?
            }
        };
        let mask = masked.then(|| {
            let m = &b[2 + extra..len];
            [m[0], m[1], m[2], m[3]]
        });
        Ok(Some(Head {
            first,
            len,
            payload,
            mask,
        }))
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("eight bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends a final frame of `opcode` whose payload is `parts` one after the other;
/// `masked`: as a client (with the all-zero key).
pub fn put(out: &mut Vec<u8>, opcode: OpCode, parts: &[&[u8]], masked: bool) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let header = FrameHeader {
        opcode,
        mask: masked.then_some([0; 4]),
        ..FrameHeader::default()
    };
    header
        .format(len as u64, out)
        .expect("writing to a Vec cannot fail");
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// A WebSocket connection on a non-blocking socket: the input read so far and the
/// output not yet written.
pub struct Conn {
    stream: TcpStream,
    /// What has been read.
    pub input: Input,
    /// What is to be written; append frames with [`put`].
    pub out: Vec<u8>,
    written: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            input: Input::default(),
            out: Vec::with_capacity(READ_CHUNK),
            written: 0,
        }
    }

    /// Output not yet written, in bytes.
    pub fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Waits until the socket can be read (or written, while output is pending), then
    /// reads what has arrived and writes what it takes. Cancel-safe: it only waits before
    /// doing anything.
    ///
    /// # Errors
    ///
    /// The connection closed or failed.
    pub async fn io(&mut self) -> io::Result<()> {
        let interest = if self.pending() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let ready = self.stream.ready(interest).await?;
        if ready.is_readable() || ready.is_read_closed() {
            self.read_some()?;
        }
        if ready.is_writable() {
            self.write_some()?;
        }
        Ok(())
    }

    /// Reads what the socket has, up to one chunk, without waiting (the frames of one
    /// chunk are handled before more is read, so the buffer stays small).
    fn read_some(&mut self) -> io::Result<()> {
        match self.stream.try_read(self.input.spare()) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.input.end += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes what the socket takes, without waiting.
    pub fn write_some(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            match self.stream.try_write(&self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        } else if self.written > READ_CHUNK && self.written * 2 >= self.out.len() {
            // Only once half the buffer is written, so each byte moves at most about once
            // (acknowledgements can pile up by megabytes while a client does not read).
            self.out.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Writes all pending output, waiting as needed (reading meanwhile).
    ///
    /// # Errors
    ///
    /// The connection closed or failed.
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            self.io().await?;
        }
        Ok(())
    }

    /// The socket as a blocking one, and what has been read (all output must have been
    /// written).
    ///
    /// # Errors
    ///
    /// Output is pending, or the socket could not be made blocking.
    pub fn into_blocking(self) -> io::Result<(std::net::TcpStream, Input)> {
        if self.pending() > 0 {
            return Err(io::Error::other("output still pending"));
        }
        let stream = self.stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok((stream, self.input))
    }

    /// Reads until the input holds a complete HTTP head (`\r\n\r\n`); returns its length.
    async fn read_head(&mut self) -> io::Result<usize> {
        loop {
            if let Some(at) = find(self.input.unread(), b"\r\n\r\n") {
                return Ok(at + 4);
            }
            if self.input.unread().len() > MAX_HEAD {
                return Err(io::Error::other("HTTP head too long"));
            }
            self.io().await?;
        }
    }

    /// The server's side of the upgrade: reads the request, answers 101 if it is a
    /// WebSocket upgrade on `/api/v<N>/wsock/websocket` (404 otherwise, and fails).
    ///
    /// # Errors
    ///
    /// Not an upgrade request, or the connection failed.
    pub async fn accept(stream: TcpStream) -> io::Result<Conn> {
        let mut conn = Conn::new(stream);
        let len = conn.read_head().await?;
        let key = {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let head = &conn.input.unread()[..len];
            req.parse(head).map_err(io::Error::other)?;
            let path_ok = req.path.is_some_and(|p| {
                p.strip_prefix("/api/v")
                    .and_then(|p| p.split_once('/'))
                    .is_some_and(|(n, rest)| {
                        !n.is_empty()
                            && n.bytes().all(|b| b.is_ascii_digit())
                            && rest == "wsock/websocket"
                    })
            });
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
                .map(|h| h.value.to_vec());
            match key {
                Some(key) if path_ok && req.method == Some("GET") => key,
                _ => {
                    conn.out.extend_from_slice(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    conn.flush().await?;
                    return Err(io::Error::other("not a WebSocket upgrade"));
                }
            }
        };
        conn.input.start += len;
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {}\r\n\r\n",
            derive_accept_key(&key)
        );
        conn.out.extend_from_slice(answer.as_bytes());
        conn.flush().await?;
        Ok(conn)
    }

    /// The client's side: connects to `addr` (`host:port`) and upgrades on `path`.
    ///
    /// # Errors
    ///
    /// The connection failed or the server did not switch protocols.
    pub async fn connect(addr: &str, path: &str) -> io::Result<Conn> {
        let mut conn = Conn::new(TcpStream::connect(addr).await?);
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: {CLIENT_KEY}\r\n\r\n"
        );
        conn.out.extend_from_slice(request.as_bytes());
        conn.flush().await?;
        let len = conn.read_head().await?;
        {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            resp.parse(&conn.input.unread()[..len])
                .map_err(io::Error::other)?;
            let accept = derive_accept_key(CLIENT_KEY.as_bytes());
            let accepted = resp.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == accept.as_bytes()
            });
            if resp.code != Some(101) || !accepted {
                return Err(io::Error::other(format!(
                    "upgrade refused: status {:?}",
                    resp.code
                )));
            }
        }
        conn.input.start += len;
        Ok(conn)
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_are_read_back_masked_or_not() {
        let mut input = Input::default();
        for masked in [false, true] {
            let mut out = Vec::new();
            put(&mut out, TEXT, &[b"hello ", b"world"], masked);
            let big = vec![b'x'; 70_000];
            put(&mut out, BINARY, &[&big], masked);
            input.spare()[..out.len()].copy_from_slice(&out);
            input.end += out.len();
        }
        for _ in 0..2 {
            let f = input.frame().unwrap().unwrap();
            assert_eq!((f.opcode, f.fin), (TEXT, true));
            assert_eq!(&input.bytes()[f.payload], b"hello world");
            let f = input.frame().unwrap().unwrap();
            assert_eq!(f.payload.len(), 70_000);
        }
        assert!(input.frame().unwrap().is_none());
    }

    #[test]
    fn unmasking_by_words_is_unmasking_by_bytes() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in [0, 1, 7, 8, 9, 100] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut words = data.clone();
            unmask(&mut words, mask);
            let bytes: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(words, bytes, "{len}");
        }
    }

    #[test]
    fn a_masked_frame_is_unmasked_in_place() {
        let mut input = Input::default();
        let frame = [0x81, 0x82, 1, 2, 3, 4, b'o' ^ 1, b'k' ^ 2];
        // Only half the frame first: nothing is consumed.
        input.spare()[..4].copy_from_slice(&frame[..4]);
        input.end += 4;
        assert!(input.frame().unwrap().is_none());
        input.spare()[..4].copy_from_slice(&frame[4..]);
        input.end += 4;
        let f = input.frame().unwrap().unwrap();
        assert_eq!(&input.bytes()[f.payload], b"ok");
    }
}
