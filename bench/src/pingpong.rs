//! The kernel's floor for a round trip: two processes bouncing a message over loopback TCP
//! with blocking sockets, no event loop, no WebSocket, no JSON. No connector, however it is
//! written, can answer a query faster than this on the same machine, so the benchmark
//! prints it beside the query latencies.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bytes per message each way: about the size of a `rows` query and its answer.
pub const MESSAGE_BYTES: usize = 160;

/// The echoing side (run as `floor --tcp-echo ADDR`): connects to `addr` and sends back
/// every message until the other side closes.
pub fn echo(addr: &str) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = [0u8; MESSAGE_BYTES];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The measuring side: starts `floor_bin --tcp-echo`, bounces `count` messages off it one
/// at a time, and returns each round trip in microseconds (blocking: run it off the async
/// runtime).
pub fn measure(floor_bin: &Path, count: usize) -> io::Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let mut child = Command::new(floor_bin)
        .args(["--tcp-echo", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let result = (|| {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let out = [b'x'; MESSAGE_BYTES];
        let mut back = [0u8; MESSAGE_BYTES];
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            stream.write_all(&out)?;
            stream.read_exact(&mut back)?;
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok(samples)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
