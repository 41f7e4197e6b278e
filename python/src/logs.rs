//! The core's `tracing` events forwarded into Python's `logging`.
//!
//! A `tracing` layer turns each event into a record (level, logger name, message) and
//! queues it on the most recently made [`crate::bridge::Bridge`]; the asyncio thread
//! emits it with `logging.getLogger(name).log(level, message)` when it takes its batch.
//! Records made while no bridge exists wait (up to [`PENDING_LIMIT`]) for the next one.
//! The logger name is the Rust target with `::` written `.`, the SDK's crate named as
//! the official SDK's logger (`vantiqconnectorsdk.connection.task`), so the package's
//! logger configures both.
//! Only events at or above the level set with [`set_log_level`] are formatted at all.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::bridge::Shared;

/// Records kept while no bridge exists, at most (older ones are dropped).
const PENDING_LIMIT: usize = 1000;

/// Python's logging level below which events are not forwarded (WARNING by default).
static THRESHOLD: AtomicU8 = AtomicU8::new(30);

struct Record {
    level: u8,
    name: String,
    message: String,
}

static TARGET: Mutex<Option<Weak<Shared>>> = Mutex::new(None);
static PENDING: Mutex<Vec<Record>> = Mutex::new(Vec::new());

fn python_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Makes `bridge` the receiver of log records, handing it those that waited.
pub(crate) fn attach(bridge: &Arc<Shared>) {
    *TARGET.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(bridge));
    let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(PoisonError::into_inner));
    for record in pending {
        bridge.push(build(record));
    }
}

fn build(record: Record) -> crate::bridge::Build {
    Box::new(move |py| {
        Ok(("l", record.level, record.name, record.message)
            .into_pyobject(py)?
            .into_any())
    })
}

fn emit(record: Record) {
    let target = TARGET
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(Weak::upgrade);
    match target {
        Some(bridge) => bridge.push(build(record)),
        None => {
            let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= PENDING_LIMIT {
                pending.remove(0);
            }
            pending.push(record);
        }
    }
}

/// Formats an event's fields: the message, then `key=value` for the others.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

struct ToPython;

/// The formatted fields of a span, kept in its extensions.
struct SpanFields(String);

impl<S> Layer<S> for ToPython
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            let text = format!("{}{}", span.name(), fields.rest);
            span.extensions_mut().insert(SpanFields(text));
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        python_level(metadata.level()) >= THRESHOLD.load(Ordering::Relaxed)
    }

    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The threshold changes at run time: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields.message.push_str(&fields.rest);
        // The spans the event is in (the source's, say), outermost first.
        if let Some(scope) = ctx.event_scope(event) {
            let mut spans = String::new();
            for span in scope.from_root() {
                if let Some(SpanFields(text)) = span.extensions().get::<SpanFields>() {
                    let _ = write!(spans, "[{text}] ");
                }
            }
            fields.message.insert_str(0, &spans);
        }
        emit(Record {
            level: python_level(meta.level()),
            name: logger_name(meta.target()),
            message: fields.message,
        });
    }
}

/// The Python logger of a Rust target: `::` written `.`, and the SDK's own targets
/// under the official SDK's logger (`vantiqconnectorsdk.connection.task`), so that a
/// `logger.ini` written for it configures the core's records too.
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    match dotted.strip_prefix("vantiq_connector_sdk") {
        Some(rest) => format!("vantiqconnectorsdk{rest}"),
        None => dotted,
    }
}

/// Installs the forwarding layer as the process's `tracing` subscriber (once; a
/// subscriber installed before is left alone).
pub(crate) fn install() {
    let _ = tracing_subscriber::registry().with(ToPython).try_init();
}

/// Sets the Python logging level from which the core's events are forwarded.
#[pyfunction]
pub(crate) fn set_log_level(level: u8) {
    THRESHOLD.store(level.max(1), Ordering::Relaxed);
}
