//! One connection to the load server: the handshake, then the jobs, all on one task (see
//! the module docs of [`super`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use vantiq_sim::{frames, kinds};

use super::jobs::{Active, Job, Publishes, Queries, Report, Template};
use super::{Command, Shared};
use crate::rawws::{self, put, Conn, OpCode};

/// A job fails when nothing it waits for arrived for this long.
const STALL: Duration = Duration::from_secs(5);
/// Publishes are formatted ahead of the socket up to this much pending output.
const HIGH_WATER: usize = 256 * 1024;

/// Where the handshake stands.
#[derive(PartialEq)]
enum Phase {
    Fresh,
    Authenticated,
    Connected,
}

/// Everything but the socket (so a frame borrowed from the input can be handled while the
/// output is appended to).
struct State {
    shared: Arc<Shared>,
    id: u64,
    phase: Phase,
    /// The data frame type to send (that of the connector's last data frame).
    opcode: OpCode,
    ack_text: Vec<u8>,
    ack_binary: Vec<u8>,
    publish_prefix: Vec<u8>,
    check: frames::NotificationCheck,
    /// The frames of the last publish job's objects, kept for the next rounds.
    publishes: Option<Publishes>,
    /// A fragmented message being put together.
    partial: Option<Vec<u8>>,
    jobs: Option<mpsc::UnboundedReceiver<Command>>,
    /// Notifications received in all, and asked for in all (by the jobs so far).
    seen: u64,
    expected: u64,
    next_query: u64,
    active: Option<(Active, oneshot::Sender<Result<Report, String>>)>,
    last_progress: Instant,
    closing: bool,
}

pub(super) async fn run(shared: Arc<Shared>, stream: TcpStream) {
    let Ok(mut conn) = Conn::accept(stream).await else {
        return;
    };
    let id = shared
        .next_session
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ack = |opcode| {
        let mut frame = Vec::new();
        put(&mut frame, opcode, &[frames::ack().as_bytes()], false);
        frame
    };
    let (ack_text, ack_binary) = (ack(rawws::TEXT), ack(rawws::BINARY));
    let mut st = State {
        publish_prefix: frames::publish_prefix(&shared.source).into_bytes(),
        check: frames::NotificationCheck::new(&shared.source),
        publishes: None,
        shared,
        id,
        phase: Phase::Fresh,
        opcode: rawws::TEXT,
        ack_text,
        ack_binary,
        partial: None,
        jobs: None,
        seen: 0,
        expected: 0,
        next_query: 1,
        active: None,
        last_progress: Instant::now(),
        closing: false,
    };
    let _ = serve(&mut conn, &mut st).await;
    let mut owner = crate::lock(&st.shared.owner);
    if owner.as_ref().is_some_and(|(o, _)| *o == st.id) {
        *owner = None;
    }
}

async fn serve(conn: &mut Conn, st: &mut State) -> Result<(), String> {
    // Stalls are looked for once a second (one timer for the whole session, not one per
    // wake-up).
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let seen = st.seen;
        while let Some(frame) = conn.input.frame()? {
            let payload = &conn.input.bytes()[frame.payload.clone()];
            st.on_frame(frame.opcode, frame.fin, payload, &mut conn.out)?;
        }
        if st.seen != seen {
            st.last_progress = Instant::now();
        }
        if st.closing {
            let _ = conn.flush().await;
            return Ok(());
        }
        let pending = conn.pending();
        st.refill(&mut conn.out, pending);
        st.finish_if_complete();
        conn.write_some().map_err(|e| e.to_string())?;
        tokio::select! {
            r = conn.io() => r.map_err(|e| e.to_string())?,
            cmd = next_command(&mut st.jobs), if st.active.is_none() => match cmd {
                Some(cmd) => st.start(cmd, &mut conn.out),
                None => st.jobs = None,
            },
            _ = check.tick() => {
                if st.active.is_some() && st.last_progress.elapsed() >= STALL {
                    st.stalled();
                }
            }
        }
    }
}

async fn next_command(jobs: &mut Option<mpsc::UnboundedReceiver<Command>>) -> Option<Command> {
    match jobs {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl State {
    fn on_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match opcode {
            rawws::TEXT | rawws::BINARY => {
                self.opcode = opcode;
                if fin {
                    return self.on_message(payload, out);
                }
                self.partial = Some(payload.to_vec());
            }
            rawws::CONTINUE => {
                let mut whole = self.partial.take().ok_or("a continuation of nothing")?;
                whole.extend_from_slice(payload);
                if fin {
                    return self.on_message(&whole, out);
                }
                self.partial = Some(whole);
            }
            rawws::PING => put(out, rawws::PONG, &[payload], false),
            rawws::CLOSE => {
                put(out, rawws::CLOSE, &[payload.get(..2).unwrap_or(&[])], false);
                self.closing = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let text = std::str::from_utf8(payload).map_err(|_| "a frame that is not UTF-8")?;
        if self.phase != Phase::Connected {
            self.handshake(text, out);
            return Ok(());
        }
        if !text.trim_start().starts_with(r#"{"status""#) {
            match self.check.check(text) {
                Some(Ok(())) => {
                    self.seen += 1;
                    let ack = if self.opcode == rawws::BINARY {
                        &self.ack_binary
                    } else {
                        &self.ack_text
                    };
                    out.extend_from_slice(ack);
                    return Ok(());
                }
                Some(Err(p)) => {
                    self.shared.violation(p.kind, p.detail);
                    let refused = frames::notification_refused();
                    put(out, self.opcode, &[refused.as_bytes()], false);
                    return Ok(());
                }
                None => {}
            }
        }
        match frames::read_answer(text) {
            Some(answer) => self.on_answer(&answer, text, out),
            None => self.shared.violation(
                kinds::BAD_SHAPE,
                format!(
                    "neither a notification nor an answer: {}",
                    frames::excerpt(text)
                ),
            ),
        }
        Ok(())
    }

    fn handshake(&mut self, text: &str, out: &mut Vec<u8>) {
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        let op = v.get("op").and_then(Value::as_str);
        let reply = match (op, &self.phase) {
            (Some("validate"), Phase::Fresh) => {
                if v.get("object").and_then(Value::as_str) == Some(&self.shared.token) {
                    self.phase = Phase::Authenticated;
                    frames::auth_ok(self.id, "bench")
                } else {
                    frames::auth_refused()
                }
            }
            (Some("connectExtension"), Phase::Authenticated) => {
                let ok = v.get("resourceId").and_then(Value::as_str) == Some(&self.shared.source);
                let mut owner = crate::lock(&self.shared.owner);
                if !ok || owner.is_some() {
                    frames::connect_refused("no such source, or it is served already")
                } else {
                    let (tx, rx) = mpsc::unbounded_channel();
                    *owner = Some((self.id, tx));
                    self.jobs = Some(rx);
                    self.phase = Phase::Connected;
                    put(out, self.opcode, &[frames::ack().as_bytes()], false);
                    let configure =
                        frames::configure_extension(&self.shared.source, &self.shared.config);
                    put(out, self.opcode, &[configure.as_bytes()], false);
                    self.shared.connections.send_modify(|n| *n += 1);
                    return;
                }
            }
            _ => {
                self.shared.violation(
                    kinds::BAD_SHAPE,
                    format!("unexpected during the handshake: {}", frames::excerpt(text)),
                );
                return;
            }
        };
        put(out, self.opcode, &[reply.as_bytes()], false);
    }

    fn on_answer(&mut self, answer: &frames::Answer<'_>, text: &str, out: &mut Vec<u8>) {
        for p in answer.problems(text) {
            self.shared.violation(p.kind, p.detail);
        }
        let unknown = |st: &State| {
            st.shared.violation(
                kinds::UNKNOWN_REPLY_ADDRESS,
                format!(
                    "an answer to a query not in flight: {}",
                    frames::excerpt(text)
                ),
            )
        };
        let (Some(id), Some((active, _))) =
            (frames::parse_reply_address(&answer.addr), &mut self.active)
        else {
            return unknown(self);
        };
        self.last_progress = Instant::now();
        active.report.rows += answer.rows() as u64;
        if let Some((qid, status)) = &mut active.notify {
            if *qid == id && status.is_none() {
                if answer.is_final() {
                    *status = Some(answer.status);
                }
                return;
            }
            return unknown(self);
        }
        let opcode = self.opcode;
        let Some(q) = active.queries.as_mut() else {
            return unknown(self);
        };
        let index = id.wrapping_sub(q.first) as usize;
        if q.finished.get(index) != Some(&false) {
            return unknown(self);
        }
        if !answer.is_final() {
            return;
        }
        q.finished[index] = true;
        active.report.answered += 1;
        if answer.status >= 300 {
            active.report.errors += 1;
        }
        active.report.latencies.push(q.sent_at[index].elapsed());
        let Job::Queries { n, .. } = active.job else {
            return;
        };
        if (q.sent_at.len() as u64) < n {
            let next = q.first + q.sent_at.len() as u64;
            q.template.put(out, opcode, next);
            q.sent_at.push(Instant::now());
            q.finished.push(false);
        }
    }

    fn start(&mut self, cmd: Command, out: &mut Vec<u8>) {
        if self.seen != self.expected {
            let _ = cmd.done.send(Err(format!(
                "{} notifications received, {} asked for",
                self.seen, self.expected
            )));
            return;
        }
        self.expected += cmd.job.notifications();
        let mut active = Active {
            started: Instant::now(),
            base: self.seen,
            published: 0,
            queries: None,
            notify: None,
            report: Report {
                latencies: match &cmd.job {
                    Job::Queries { n, .. } => Vec::with_capacity(*n as usize),
                    _ => Vec::new(),
                },
                ..Report::default()
            },
            job: cmd.job,
        };
        match &active.job {
            Job::Notify { params, .. } => {
                let id = self.take_ids(1);
                let text = frames::query(&self.shared.source, params, &frames::reply_address(id));
                put(out, self.opcode, &[text.as_bytes()], false);
                active.notify = Some((id, None));
            }
            Job::Queries {
                n,
                in_flight,
                params,
            } => {
                let first = self.take_ids(*n);
                let mut q = Queries {
                    first,
                    template: Template::new(&self.shared.source, params),
                    sent_at: Vec::with_capacity(*n as usize),
                    finished: Vec::with_capacity(*n as usize),
                };
                for id in first..first + (*in_flight).max(1).min(*n) {
                    q.template.put(out, self.opcode, id);
                    q.sent_at.push(Instant::now());
                    q.finished.push(false);
                }
                active.queries = Some(q);
            }
            Job::Publish {
                n, before, after, ..
            } => {
                let fits = self
                    .publishes
                    .as_ref()
                    .is_some_and(|p| p.fits(*n, before, after, self.opcode));
                if !fits {
                    self.publishes = Some(Publishes::new(
                        &self.publish_prefix,
                        *n,
                        before,
                        after,
                        self.opcode,
                    ));
                }
                // The frames are made: the clock starts now.
                active.started = Instant::now();
            }
        }
        self.last_progress = Instant::now();
        self.active = Some((active, cmd.done));
    }

    fn take_ids(&mut self, n: u64) -> u64 {
        let first = self.next_query;
        self.next_query += n;
        first
    }

    /// Appends the publishes the job may send now, up to [`HIGH_WATER`] of output.
    fn refill(&mut self, out: &mut Vec<u8>, pending: usize) {
        let (Some((active, _)), Some(publishes)) = (&mut self.active, &self.publishes) else {
            return;
        };
        let Job::Publish { n, window, .. } = &active.job else {
            return;
        };
        let echoed = (self.seen - active.base) as usize;
        let allowed = match window {
            None => *n,
            Some((chunk, chunks)) => {
                // Whole chunks, each once all but `chunks - 1` chunks before it are echoed.
                let mut allowed = active.published;
                while allowed < *n {
                    let end = (allowed + chunk).min(*n);
                    if echoed < end.saturating_sub(chunk * chunks) {
                        break;
                    }
                    allowed = end;
                }
                allowed
            }
        };
        if pending < HIGH_WATER {
            active.published = publishes.copy(out, active.published, allowed, HIGH_WATER - pending);
        }
    }

    fn finish_if_complete(&mut self) {
        let done = self
            .active
            .as_ref()
            .is_some_and(|(a, _)| a.complete(self.seen));
        if !done {
            return;
        }
        let Some((mut active, reply)) = self.active.take() else {
            return;
        };
        active.report.elapsed = active.started.elapsed();
        let result = match (&active.job, active.notify) {
            (Job::Notify { .. }, Some((_, Some(status)))) if status != 200 => {
                Err(format!("notify answered {status}"))
            }
            _ => Ok(active.report),
        };
        let _ = reply.send(result);
    }

    fn stalled(&mut self) {
        if let Some((active, reply)) = self.active.take() {
            let _ = reply.send(Err(format!(
                "stalled: {}, nothing for {} s",
                active.progress(self.seen),
                STALL.as_secs()
            )));
        }
    }
}
