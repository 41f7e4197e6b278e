//! The driver's command line, and where it finds the programs it runs.

use std::path::{Path, PathBuf};

/// The usage line of `--help`.
pub const USAGE: &str = "vantiq-bench [--quick] [--rounds N] [--skip-python] \
     [--only single,connect,restart,stalled] [--sizes 1,100,1000,10000] [--figures publish_echo,publish_echo_windowed,notify,latency_p50,query_tput] \
     [--baseline NAME=PATH]... [--python-baseline NAME=PYTHON]... [--notifications N] [--out DIR]\n\
     environment: BENCH_ECHO_BIN (the current echo), BENCH_BASELINE=NAME=PATH,NAME2=PATH2 \
     (extra echo columns), BENCH_PYTHON, BENCH_KEEP, BENCH_RT=current, BENCH_STOP_GRACE_MS (SIGTERM first)";

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Smaller workloads, 3 rounds, up to 1,000 sources.
    pub quick: bool,
    /// Rounds per figure.
    pub rounds: usize,
    /// Leave out the Python SDK.
    pub skip_python: bool,
    /// The parts to run: `single`, `connect`, `restart`, `stalled`.
    pub parts: Vec<String>,
    /// The source counts of `connect`.
    pub sizes: Vec<usize>,
    /// `--figures`: only these single-source figures (by id, e.g. `query_tput`); all when
    /// empty. For profiling one workload at a time.
    pub figures: Vec<String>,
    /// Extra echo columns: a name and another build's echo binary (`--baseline`, then
    /// `BENCH_BASELINE`), measured interleaved with the current echo.
    pub baselines: Vec<(String, PathBuf)>,
    /// Extra Python columns: a name and the interpreter of another venv whose
    /// `vantiq_connector_sdk` (another build of python/) runs the same Python echo
    /// (`--python-baseline NAME=PYTHON`): the package before and after a change in
    /// one run.
    pub python_baselines: Vec<(String, PathBuf)>,
    /// `--notifications N`: the `notify` figure's notifications per round instead of
    /// the default (a tenth for the Python SDK, four times for the ceiling, as the
    /// default's): a diagnostic of how the burst's length bears on a figure.
    pub notifications: Option<usize>,
    /// Where `latest.json` and `chart.svg` go.
    pub out: PathBuf,
    /// The workspace root.
    pub root: PathBuf,
}

/// Parses `NAME=PATH`.
fn baseline(spec: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = spec
        .split_once('=')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        .ok_or(format!("baseline {spec:?}: expected NAME=PATH"))?;
    if matches!(
        name,
        "echo" | "echo_raw" | "python" | "python_rust" | "floor" | "floor_parse" | "ceiling"
    ) {
        return Err(format!("baseline {spec:?}: {name} names a built-in column"));
    }
    // Absolute: connectors are started in directories of their own.
    let path = std::path::absolute(path).map_err(|e| format!("baseline {spec:?}: {e}"))?;
    Ok((name.to_owned(), path))
}

impl Opts {
    /// Parses the process's arguments and `BENCH_BASELINE`.
    pub fn parse() -> Result<Opts, String> {
        let env = std::env::var("BENCH_BASELINE").unwrap_or_default();
        Self::parse_from(std::env::args().skip(1), &env)
    }

    /// Parses `args` (without the program name) and the value of `BENCH_BASELINE`.
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        env_baselines: &str,
    ) -> Result<Opts, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut o = Opts {
            quick: false,
            rounds: 0,
            skip_python: false,
            parts: ["single", "connect", "restart", "stalled"]
                .map(String::from)
                .to_vec(),
            sizes: Vec::new(),
            figures: Vec::new(),
            baselines: Vec::new(),
            python_baselines: Vec::new(),
            notifications: None,
            out: root.join("bench/results"),
            root,
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--skip-python" => o.skip_python = true,
                "--rounds" => {
                    o.rounds = value("--rounds")?
                        .parse()
                        .map_err(|e| format!("--rounds: {e}"))?
                }
                "--only" => o.parts = value("--only")?.split(',').map(str::to_owned).collect(),
                "--sizes" => {
                    o.sizes = value("--sizes")?
                        .split(',')
                        .map(|s| s.parse().map_err(|e| format!("--sizes: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "--figures" => {
                    o.figures = value("--figures")?.split(',').map(str::to_owned).collect()
                }
                "--baseline" => o.baselines.push(baseline(&value("--baseline")?)?),
                "--python-baseline" => o
                    .python_baselines
                    .push(baseline(&value("--python-baseline")?)?),
                "--notifications" => {
                    o.notifications = Some(
                        value("--notifications")?
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or("--notifications: a positive count")?,
                    )
                }
                "--out" => o.out = PathBuf::from(value("--out")?),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        for spec in env_baselines.split(',').filter(|s| !s.trim().is_empty()) {
            o.baselines.push(baseline(spec.trim())?);
        }
        for (i, (name, _)) in o.baselines.iter().enumerate() {
            if o.baselines[..i].iter().any(|(n, _)| n == name) {
                return Err(format!("baseline {name} given twice"));
            }
        }
        if o.rounds == 0 {
            o.rounds = if o.quick { 3 } else { 5 };
        }
        if o.sizes.is_empty() {
            o.sizes = if o.quick {
                vec![1, 100, 1000]
            } else {
                vec![1, 100, 1000, 10_000]
            };
        }
        Ok(o)
    }

    /// Whether part `p` (`single`, `connect`, `restart`, `stalled`) is to run.
    pub fn part(&self, p: &str) -> bool {
        self.parts.iter().any(|x| x == p)
    }

    /// Whether the single-source figure `id` is to run (see `--figures`).
    pub fn wants_figure(&self, id: &str) -> bool {
        self.figures.is_empty() || self.figures.iter().any(|f| f == id)
    }

    /// The echo binary: `BENCH_ECHO_BIN`, or the workspace's release build.
    pub fn echo_bin(&self) -> PathBuf {
        std::env::var_os("BENCH_ECHO_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target/release/examples/echo"))
    }

    /// The floor binary of the workspace's release build.
    pub fn floor_bin(&self) -> PathBuf {
        self.root.join("target/release/floor")
    }

    /// The Python interpreter with the official SDK: `BENCH_PYTHON`, or `.venv`.
    pub fn python(&self) -> PathBuf {
        std::env::var_os("BENCH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join(".venv/bin/python"))
    }

    /// The echo on the official Python SDK.
    pub fn python_script(&self) -> PathBuf {
        self.root.join("vantiq-sim/tests/python/echo_connector.py")
    }

    /// The same echo with its imports of `vantiqconnectorsdk` changed to
    /// `vantiq_connector_sdk` (the package in python/), nothing else; written
    /// under target/.
    pub fn python_script_on_our_package(&self) -> Result<PathBuf, String> {
        let original = self.python_script();
        let text = std::fs::read_to_string(&original)
            .map_err(|e| format!("{}: {e}", original.display()))?
            .replace(
                "import vantiqconnectorsdk as",
                "import vantiq_connector_sdk as",
            )
            .replace(
                "from vantiqconnectorsdk import",
                "from vantiq_connector_sdk import",
            );
        let dir = self.root.join("target/bench-python");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("echo_connector.py");
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn baselines_from_flags_then_environment() {
        let o = Opts::parse_from(args(&["--baseline", "old=/a/echo"]), "b=/b, c=/c").unwrap();
        let names: Vec<&str> = o.baselines.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["old", "b", "c"]);
        assert_eq!(o.baselines[2].1, PathBuf::from("/c"));
    }

    #[test]
    fn bad_baselines_are_refused() {
        for (a, env) in [
            (args(&["--baseline", "nopath"]), ""),
            (args(&["--baseline", "echo=/x"]), ""),
            (args(&[]), "a=/x,a=/y"),
            (args(&[]), "=/x"),
        ] {
            assert!(Opts::parse_from(a.clone(), env).is_err(), "{a:?} {env}");
        }
    }

    #[test]
    fn notifications_per_round_are_a_positive_count() {
        let o = Opts::parse_from(args(&["--notifications", "2000000"]), "").unwrap();
        assert_eq!(o.notifications, Some(2_000_000));
        assert_eq!(Opts::parse_from(args(&[]), "").unwrap().notifications, None);
        for bad in ["0", "-1", "many"] {
            assert!(Opts::parse_from(args(&["--notifications", bad]), "").is_err());
        }
    }

    #[test]
    fn quick_defaults() {
        let o = Opts::parse_from(args(&["--quick"]), "").unwrap();
        assert_eq!((o.rounds, o.sizes.clone()), (3, vec![1, 100, 1000]));
        assert!(o.part("single") && o.baselines.is_empty());
    }
}
