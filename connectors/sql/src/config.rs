//! The source's configuration document: jdbcSource's, as is, plus a few optional
//! settings of our own. See the README, "Configuration".
//!
//! Every error names the field (`jdbcConfig.general.pollTime: ...`). The password is
//! kept in the SDK's [`Secret`], which prints as `***`; the `dbURL` is parsed into the
//! driver's options, never into a URL string with the password in it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
pub use vantiq_connector_sdk::Secret;

/// jdbcSource's default of `maxActiveTasks`.
pub const DEFAULT_MAX_ACTIVE_TASKS: usize = 5;
/// jdbcSource's default of `maxQueuedTasks`.
pub const DEFAULT_MAX_QUEUED_TASKS: usize = 10;
/// Publishes kept for a retry while the database is unreachable, unless configured.
pub const DEFAULT_PUBLISH_RETRY_LIMIT: usize = 1000;
/// Time between retries of kept publishes, unless configured.
pub const DEFAULT_PUBLISH_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long a query waits for a database connection before it fails, unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a source talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `jdbc:postgresql:`
    Postgres,
    /// `jdbc:mysql:` or `jdbc:mariadb:`
    MySql,
    /// `jdbc:sqlite:`
    Sqlite,
}

/// The driver's connect options, made from the `dbURL` and the credentials.
#[derive(Clone)]
pub enum Target {
    /// PostgreSQL.
    Postgres(PgConnectOptions),
    /// MySQL or MariaDB.
    MySql(MySqlConnectOptions),
    /// SQLite; `memory` for `jdbc:sqlite::memory:` (one connection: each has its own).
    Sqlite {
        /// The options.
        options: SqliteConnectOptions,
        /// An in-memory database.
        memory: bool,
    },
}

impl Target {
    /// The database's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Target::Postgres(_) => Kind::Postgres,
            Target::MySql(_) => Kind::MySql,
            Target::Sqlite { .. } => Kind::Sqlite,
        }
    }
}

/// `pollTime` and `pollQuery`.
#[derive(Debug, Clone, PartialEq)]
pub struct Poll {
    /// `pollTime`.
    pub every: Duration,
    /// `pollQuery`.
    pub query: String,
}

/// A parsed, checked configuration document.
#[derive(Clone)]
pub struct SourceConfig {
    /// The driver's options (they hold the password: never printed).
    pub target: Target,
    /// The `dbURL` with its password parameter masked, for logs.
    pub display_url: String,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `pollTime` and `pollQuery`.
    pub poll: Option<Poll>,
    /// `asynchronousProcessing`.
    pub asynchronous: bool,
    /// `maxActiveTasks` (1 unless `asynchronousProcessing`).
    pub max_active_tasks: usize,
    /// `maxQueuedTasks` (unbounded unless `asynchronousProcessing`).
    pub max_queued_tasks: Option<usize>,
    /// `includeNulls` (ours): NULL columns as `null` rather than left out.
    pub include_nulls: bool,
    /// `publishRetryLimit` (ours).
    pub publish_retry_limit: usize,
    /// `publishRetryInterval` (ours, milliseconds).
    pub publish_retry_interval: Duration,
    /// `connectTimeout` (ours, milliseconds).
    pub connect_timeout: Duration,
    /// What was ignored (unknown `dbURL` parameters, unknown keys): logged as warnings.
    pub warnings: Vec<String>,
    /// The document as received with the password masked, to tell a changed one.
    fingerprint: String,
}

impl PartialEq for SourceConfig {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.password == other.password
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("kind", &self.target.kind())
            .field("db_url", &self.display_url)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("poll", &self.poll)
            .field("asynchronous", &self.asynchronous)
            .field("max_active_tasks", &self.max_active_tasks)
            .field("max_queued_tasks", &self.max_queued_tasks)
            .field("include_nulls", &self.include_nulls)
            .finish_non_exhaustive()
    }
}

/// A configuration error: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's path, e.g. `jdbcConfig.general.dbURL`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

const GENERAL: &str = "jdbcConfig.general";

/// The keys of `jdbcConfig.general` this connector reads (the rest are warned about).
const KNOWN_KEYS: &[&str] = &[
    "username",
    "password",
    "dbURL",
    "pollTime",
    "pollQuery",
    "asynchronousProcessing",
    "maxActiveTasks",
    "maxQueuedTasks",
    "includeNulls",
    "publishRetryLimit",
    "publishRetryInterval",
    "connectTimeout",
];

struct General<'a> {
    map: &'a Map<String, Value>,
}

impl General<'_> {
    fn field(name: &str) -> String {
        format!("{GENERAL}.{name}")
    }

    fn string(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(&Self::field(name), "must be a string")),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(err(&Self::field(name), "must be true or false")),
        }
    }

    /// A positive integer (jdbcSource's numbers are Java integers).
    fn positive(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v > 0 => Ok(Some(v)),
                _ => Err(err(
                    &Self::field(name),
                    format!("must be a positive integer, got {n}"),
                )),
            },
            Some(other) => Err(err(
                &Self::field(name),
                format!("must be a positive integer, got {other}"),
            )),
        }
    }
}

impl SourceConfig {
    /// Parses and checks a configuration document.
    pub fn from_document(doc: &Value) -> Result<SourceConfig, ConfigError> {
        let Value::Object(doc) = doc else {
            return Err(err("config", "must be an object"));
        };
        match doc.get("vantiq").and_then(|v| v.get("packageRows")) {
            Some(Value::String(s)) if s == "true" => {}
            Some(Value::Bool(true)) => {}
            Some(other) => {
                return Err(err(
                    "vantiq.packageRows",
                    format!("must be \"true\" (as for jdbcSource), got {other}"),
                ))
            }
            None => {
                return Err(err(
                    "vantiq.packageRows",
                    "is required and must be \"true\"",
                ))
            }
        }
        let general = match doc.get("jdbcConfig").and_then(|c| c.get("general")) {
            Some(Value::Object(map)) => General { map },
            Some(_) => return Err(err(GENERAL, "must be an object")),
            None => return Err(err(GENERAL, "is required")),
        };
        let mut warnings = Vec::new();
        for key in general.map.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                warnings.push(format!("{GENERAL}.{key}: unknown, ignored"));
            }
        }
        let username = general.string("username")?;
        let password = general.string("password")?.map(Secret::new);
        let db_url = general
            .string("dbURL")?
            .ok_or_else(|| err(&General::field("dbURL"), "is required"))?;
        let parsed = parse_db_url(&db_url, username.as_deref(), password.as_ref())?;
        warnings.extend(parsed.warnings);

        let poll_time = general.positive("pollTime")?;
        let poll_query = general.string("pollQuery")?;
        let poll = match (poll_time, poll_query) {
            (Some(ms), Some(query)) if !query.trim().is_empty() => Some(Poll {
                every: Duration::from_millis(ms),
                query,
            }),
            (Some(_), _) => {
                return Err(err(
                    &General::field("pollQuery"),
                    "is required (a SQL query) when pollTime is set",
                ))
            }
            (None, Some(_)) => {
                return Err(err(
                    &General::field("pollTime"),
                    "is required (milliseconds) when pollQuery is set",
                ))
            }
            (None, None) => None,
        };
        let asynchronous = general.boolean("asynchronousProcessing")?.unwrap_or(false);
        let max_active = general.positive("maxActiveTasks")?;
        let max_queued = general.positive("maxQueuedTasks")?;
        let (max_active_tasks, max_queued_tasks) = if asynchronous {
            (
                max_active.map_or(DEFAULT_MAX_ACTIVE_TASKS, |v| v as usize),
                Some(max_queued.map_or(DEFAULT_MAX_QUEUED_TASKS, |v| v as usize)),
            )
        } else {
            (1, None)
        };
        let ms = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(general
                .positive(name)?
                .map_or(default, Duration::from_millis))
        };
        let fingerprint = {
            let mut masked = general.map.clone();
            masked.remove("password");
            Value::Object(masked).to_string()
        };
        Ok(SourceConfig {
            target: parsed.target,
            display_url: parsed.display,
            username,
            password,
            poll,
            asynchronous,
            max_active_tasks,
            max_queued_tasks,
            include_nulls: general.boolean("includeNulls")?.unwrap_or(false),
            publish_retry_limit: general
                .positive("publishRetryLimit")?
                .map_or(DEFAULT_PUBLISH_RETRY_LIMIT, |v| v as usize),
            publish_retry_interval: ms("publishRetryInterval", DEFAULT_PUBLISH_RETRY_INTERVAL)?,
            connect_timeout: ms("connectTimeout", DEFAULT_CONNECT_TIMEOUT)?,
            warnings,
            fingerprint,
        })
    }
}

/// A `dbURL` made into the driver's options.
struct ParsedUrl {
    target: Target,
    display: String,
    warnings: Vec<String>,
}

const URL_FIELD: &str = "jdbcConfig.general.dbURL";

/// Decodes `%XX` escapes and `+` (as JDBC drivers do in query parameters).
fn percent_decode(s: &str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                let b = u8::from_str_radix(hex, 16)
                    .map_err(|_| err(URL_FIELD, "a bad %-escape in a parameter"))?;
                out.push(b);
                i += 3;
            }
            b'%' => return Err(err(URL_FIELD, "a bad %-escape in a parameter")),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| err(URL_FIELD, "a parameter is not UTF-8"))
}

/// Splits `a=b&c=d` (or `;`-separated, as some JDBC URLs are) into pairs.
fn parameters(query: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for pair in query.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

/// `host[:port][,more]/database?params` after `//`.
struct Authority {
    host: String,
    port: Option<u16>,
    database: Option<String>,
    params: Vec<(String, String)>,
}

fn split_authority(rest: &str, warnings: &mut Vec<String>) -> Result<Authority, ConfigError> {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, database) = match before_query.split_once('/') {
        Some((h, d)) => (h, (!d.is_empty()).then(|| d.to_owned())),
        None => (before_query, None),
    };
    // user[:password]@ before the hosts (MySQL's URLs allow it): credentials, as the
    // `user` and `password` parameters.
    let mut userinfo = Vec::new();
    let hosts = match hosts.rsplit_once('@') {
        Some((info, hosts)) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            userinfo.push(("user".to_owned(), percent_decode(user)?));
            if !pass.is_empty() {
                userinfo.push(("password".to_owned(), percent_decode(pass)?));
            }
            hosts
        }
        None => hosts,
    };
    let mut all = hosts.split(',');
    let first = all.next().unwrap_or("");
    if all.next().is_some() {
        warnings.push(format!("{URL_FIELD}: only the first host is used"));
    }
    let (host, port) = if let Some(v6) = first.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| err(URL_FIELD, "an IPv6 host without its closing ']'"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match first.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (first.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| err(URL_FIELD, format!("the port {p:?} is not a number")))?,
        ),
        None => None,
    };
    Ok(Authority {
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        port,
        database,
        params: userinfo.into_iter().chain(parameters(query)?).collect(),
    })
}

/// The `dbURL` as it can be logged: the value of any `password` parameter masked.
fn display_url(url: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    // A password in user:password@host.
    let head = match head.split_once("//") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((info, hosts)) => {
                    let user = info.split_once(':').map_or(info, |(u, _)| u);
                    format!("{scheme}//{user}:***@{hosts}{}", &rest[end..])
                }
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if query.is_empty() {
        return head;
    }
    let masked: Vec<String> = query
        .split(['&', ';'])
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", masked.join("&"))
}

fn parse_db_url(
    url: &str,
    username: Option<&str>,
    password: Option<&Secret>,
) -> Result<ParsedUrl, ConfigError> {
    let display = display_url(url);
    let mut warnings = Vec::new();
    let target = if let Some(rest) = url.strip_prefix("jdbc:postgresql:") {
        Target::Postgres(postgres(rest, username, password, &mut warnings)?)
    } else if let Some(rest) = url
        .strip_prefix("jdbc:mysql:")
        .or_else(|| url.strip_prefix("jdbc:mariadb:"))
    {
        Target::MySql(mysql(rest, username, password, &mut warnings)?)
    } else if let Some(rest) = url.strip_prefix("jdbc:sqlite:") {
        sqlite(rest, &mut warnings)?
    } else {
        return Err(err(
            URL_FIELD,
            format!(
                "{display:?} is not a JDBC URL this connector knows: \
                 jdbc:postgresql://, jdbc:mysql://, jdbc:mariadb:// or jdbc:sqlite:"
            ),
        ));
    };
    Ok(ParsedUrl {
        target,
        display,
        warnings,
    })
}

/// The user and password: the document's `username` and `password`, or else the
/// URL's `user` and `password` parameters (taken out of `params`).
fn credentials(
    username: Option<&str>,
    password: Option<&Secret>,
    params: &mut Vec<(String, String)>,
) -> (Option<String>, Option<Secret>) {
    let mut user = username.map(str::to_owned);
    let mut pass = password.cloned();
    params.retain(|(k, v)| match k.as_str() {
        "user" => {
            user.get_or_insert_with(|| v.clone());
            false
        }
        "password" => {
            pass.get_or_insert_with(|| Secret::new(v.clone()));
            false
        }
        _ => true,
    });
    (user, pass)
}

/// The server drivers' options from the authority: host, port (or `$port`),
/// database, user and password (their options have the same methods). The URL's
/// `user` and `password` parameters are taken out of `$auth.params`.
macro_rules! options {
    ($new:expr, $auth:expr, $port:expr, $username:expr, $password:expr) => {{
        let (user, pass) = credentials($username, $password, &mut $auth.params);
        let mut o = $new.host(&$auth.host).port($auth.port.unwrap_or($port));
        if let Some(db) = &$auth.database {
            o = o.database(db);
        }
        if let Some(user) = user {
            o = o.username(&user);
        }
        if let Some(pass) = pass {
            o = o.password(pass.expose());
        }
        o
    }};
}

fn unknown(warnings: &mut Vec<String>, name: &str) {
    warnings.push(format!("{URL_FIELD}: parameter {name:?} unknown, ignored"));
}

fn postgres(
    rest: &str,
    username: Option<&str>,
    password: Option<&Secret>,
    warnings: &mut Vec<String>,
) -> Result<PgConnectOptions, ConfigError> {
    // jdbc:postgresql:database, jdbc:postgresql:/, jdbc:postgresql://host:port/database
    let mut auth = match rest.strip_prefix("//") {
        Some(rest) => split_authority(rest, warnings)?,
        None => {
            let (db, query) = rest.split_once('?').unwrap_or((rest, ""));
            Authority {
                host: "localhost".into(),
                port: None,
                database: (!db.is_empty() && db != "/").then(|| db.to_owned()),
                params: parameters(query)?,
            }
        }
    };
    let mut o = options!(
        PgConnectOptions::new_without_pgpass(),
        auth,
        5432,
        username,
        password
    );
    for (k, v) in &auth.params {
        match k.as_str() {
            "sslmode" => {
                let mode = PgSslMode::from_str(v).map_err(|_| {
                    err(
                        URL_FIELD,
                        format!("sslmode {v:?}: one of disable, allow, prefer, require, verify-ca, verify-full"),
                    )
                })?;
                o = o.ssl_mode(mode);
            }
            "ssl" if v == "true" => o = o.ssl_mode(PgSslMode::Require),
            "ssl" => {}
            "sslrootcert" => o = o.ssl_root_cert(v.as_str()),
            "sslcert" => o = o.ssl_client_cert(v.as_str()),
            "sslkey" => o = o.ssl_client_key(v.as_str()),
            "ApplicationName" | "applicationName" => o = o.application_name(v),
            "currentSchema" => o = o.options([("search_path", v.as_str())]),
            "options" => {
                // -c name=value ...
                for setting in v.split_whitespace().filter(|s| *s != "-c") {
                    let setting = setting.strip_prefix("-c").unwrap_or(setting);
                    if let Some((name, value)) = setting.split_once('=') {
                        o = o.options([(name, value)]);
                    }
                }
            }
            other => unknown(warnings, other),
        }
    }
    Ok(o)
}

fn mysql(
    rest: &str,
    username: Option<&str>,
    password: Option<&Secret>,
    warnings: &mut Vec<String>,
) -> Result<MySqlConnectOptions, ConfigError> {
    let rest = rest.strip_prefix("//").ok_or_else(|| {
        err(
            URL_FIELD,
            "a MySQL/MariaDB URL is jdbc:mysql://host:port/database",
        )
    })?;
    let mut auth = split_authority(rest, warnings)?;
    let mut o = options!(MySqlConnectOptions::new(), auth, 3306, username, password);
    for (k, v) in &auth.params {
        match k.as_str() {
            "useSSL" | "useSsl" | "requireSSL" => {
                if v == "false" {
                    o = o.ssl_mode(MySqlSslMode::Disabled);
                } else if v == "true" {
                    o = o.ssl_mode(MySqlSslMode::Required);
                }
            }
            "sslMode" | "sslmode" => {
                let mode = match v.to_ascii_uppercase().replace('-', "_").as_str() {
                    "DISABLED" | "DISABLE" => MySqlSslMode::Disabled,
                    "PREFERRED" | "PREFER" => MySqlSslMode::Preferred,
                    "REQUIRED" | "REQUIRE" | "TRUST" => MySqlSslMode::Required,
                    "VERIFY_CA" => MySqlSslMode::VerifyCa,
                    "VERIFY_IDENTITY" | "VERIFY_FULL" => MySqlSslMode::VerifyIdentity,
                    _ => {
                        return Err(err(
                            URL_FIELD,
                            format!("sslMode {v:?}: one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"),
                        ))
                    }
                };
                o = o.ssl_mode(mode);
            }
            "serverSslCert" | "sslCa" | "trustCertificateKeyStoreUrl" => {
                o = o.ssl_ca(v.trim_start_matches("file:"))
            }
            "characterEncoding" => {
                if !v.to_ascii_lowercase().starts_with("utf") {
                    warnings.push(format!(
                        "{URL_FIELD}: characterEncoding {v:?} ignored, the connector reads UTF-8"
                    ));
                }
            }
            // Java's time zone handling: the connector reads TIMESTAMP in UTC and
            // DATETIME as written.
            "serverTimezone" | "useLegacyDatetimeCode" | "allowPublicKeyRetrieval" => {}
            other => unknown(warnings, other),
        }
    }
    Ok(o)
}

fn sqlite(rest: &str, warnings: &mut Vec<String>) -> Result<Target, ConfigError> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("file:").unwrap_or(path);
    let memory = path.is_empty() || path == ":memory:";
    let mut o = if memory {
        SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| err(URL_FIELD, e.to_string()))?
    } else {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
    };
    for (k, v) in parameters(query)? {
        match k.as_str() {
            "journal_mode" => {
                let mode = SqliteJournalMode::from_str(&v)
                    .map_err(|_| err(URL_FIELD, format!("journal_mode {v:?} unknown")))?;
                o = o.journal_mode(mode);
            }
            "foreign_keys" => o = o.foreign_keys(v == "true" || v == "on" || v == "1"),
            "busy_timeout" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| err(URL_FIELD, format!("busy_timeout {v:?} is not a number")))?;
                o = o.busy_timeout(Duration::from_millis(ms));
            }
            other => unknown(warnings, other),
        }
    }
    Ok(Target::Sqlite { options: o, memory })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(general: Value) -> Value {
        json!({"vantiq": {"packageRows": "true"}, "jdbcConfig": {"general": general}})
    }

    #[test]
    fn the_readme_example_parses() {
        let c = SourceConfig::from_document(&doc(json!({
            "username": "sqlUsername",
            "password": "s3cret-pw",
            "dbURL": "jdbc:mysql://localhost/myDB?useSSL=false&serverTimezone=UTC",
            "asynchronousProcessing": true,
            "maxActiveTasks": 10,
            "maxQueuedTasks": 20,
            "pollTime": 3000,
            "pollQuery": "SELECT * FROM myTable"
        })))
        .unwrap();
        assert_eq!(c.target.kind(), Kind::MySql);
        assert_eq!(c.max_active_tasks, 10);
        assert_eq!(c.max_queued_tasks, Some(20));
        assert_eq!(c.poll.as_ref().unwrap().every, Duration::from_millis(3000));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"vantiq": {"packageRows": "false"}}),
                "vantiq.packageRows",
            ),
            (
                json!({"vantiq": {"packageRows": "true"}}),
                "jdbcConfig.general",
            ),
            (doc(json!({})), "jdbcConfig.general.dbURL"),
            (
                doc(json!({"dbURL": "jdbc:oracle:thin:@x"})),
                "jdbcConfig.general.dbURL",
            ),
            (
                doc(json!({"dbURL": "jdbc:sqlite::memory:", "pollTime": -1, "pollQuery": "x"})),
                "jdbcConfig.general.pollTime",
            ),
            (
                doc(json!({"dbURL": "jdbc:sqlite::memory:", "pollTime": 100})),
                "jdbcConfig.general.pollQuery",
            ),
            (
                doc(json!({"dbURL": "jdbc:sqlite::memory:", "maxActiveTasks": "ten"})),
                "jdbcConfig.general.maxActiveTasks",
            ),
            (
                doc(json!({"dbURL": "jdbc:postgresql://h:port/db"})),
                "jdbcConfig.general.dbURL",
            ),
            (
                doc(json!({"dbURL": "jdbc:postgresql://h/db?sslmode=sometimes"})),
                "jdbcConfig.general.dbURL",
            ),
        ];
        for (d, field) in cases {
            let e = SourceConfig::from_document(&d).unwrap_err();
            assert_eq!(e.field, field, "{d}: {e}");
        }
    }

    #[test]
    fn url_parameters_carry_over_and_unknown_ones_are_named() {
        let c = SourceConfig::from_document(&doc(json!({
            "dbURL": "jdbc:postgresql://db.example:6543/app?sslmode=require&ApplicationName=x&frobnicate=1&password=inurl-pw",
            "username": "u",
        })))
        .unwrap();
        let Target::Postgres(o) = &c.target else {
            panic!()
        };
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_database(), Some("app"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("frobnicate"));
        assert!(!c.display_url.contains("inurl-pw"), "{}", c.display_url);
        assert!(!format!("{c:?}").contains("inurl-pw"));
    }

    #[test]
    fn credentials_in_the_url_are_used_and_masked() {
        let c = SourceConfig::from_document(&doc(json!({
            "dbURL": "jdbc:mysql://app:s3cr%40t-userinfo@db.example:3307/shop?password=other-pw-in-query;useSSL=false",
        })))
        .unwrap();
        let Target::MySql(o) = &c.target else {
            panic!()
        };
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 3307);
        assert_eq!(o.get_username(), "app");
        for secret in ["s3cr", "other-pw-in-query"] {
            assert!(!c.display_url.contains(secret), "{}", c.display_url);
            assert!(!format!("{c:?}").contains(secret));
        }
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn sqlite_urls() {
        for (url, memory) in [
            ("jdbc:sqlite::memory:", true),
            ("jdbc:sqlite:", true),
            ("jdbc:sqlite:/tmp/x.db", false),
        ] {
            let c = SourceConfig::from_document(&doc(json!({ "dbURL": url }))).unwrap();
            assert!(matches!(c.target, Target::Sqlite { memory: m, .. } if m == memory));
        }
    }

    #[test]
    fn synchronous_processing_is_one_at_a_time() {
        let c = SourceConfig::from_document(&doc(json!({
            "dbURL": "jdbc:sqlite::memory:", "maxActiveTasks": 9
        })))
        .unwrap();
        assert_eq!((c.max_active_tasks, c.max_queued_tasks), (1, None));
    }
}
