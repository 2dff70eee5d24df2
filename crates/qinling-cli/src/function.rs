//! `qinling function …` (`/v1/functions`): create and update send form data as
//! python-qinlingclient does (multipart when a package goes along, urlencoded otherwise), with
//! the package either a zip given by the user or a single file zipped here in memory.
//! Download, invoke (an execution of the function), and the admin actions on its workers
//! (detach, scale up/down, list) are here too. Function arguments are ids or names.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{ArgGroup, Subcommand};
use qinling_wire::{FunctionCreate, FunctionUpdate, Scale, form_fields};
use reqwest::Method;
use reqwest::multipart::Form;
use serde_json::{Value, json};

use crate::client::{Client, file_part};
use crate::output::{self, Column, Format};
use crate::package::{Package, guess_entry};
#[cfg(test)]
use crate::package::{is_zip, md5_hex, zip_single_file};
use crate::resource::Resource;
use crate::runtime::RUNTIMES;
use crate::{Ctx, execution, parse_filter};

pub(crate) const FUNCTIONS: Resource = Resource {
    kind: "function",
    collection: "functions",
    named: true,
    columns: &[
        Column::Field("id"),
        Column::Field("name"),
        Column::Field("runtime_id"),
        Column::Field("entry"),
        Column::Field("execution_mode"),
        Column::Field("count"),
        Column::Field("created_at"),
    ],
};

const WORKER_COLUMNS: &[Column] = &[
    Column::Field("function_id"),
    Column::Field("function_version"),
    Column::Field("worker_name"),
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a function from a source file or a zip package.
    #[command(group(ArgGroup::new("code").required(true).args(["file", "package"])))]
    Create {
        /// Runtime id or name.
        #[arg(long)]
        runtime: String,
        /// A name, usable instead of the id (names need not be unique).
        #[arg(long)]
        name: Option<String>,
        /// A free-text description.
        #[arg(long)]
        description: Option<String>,
        /// `module.function` to call (default: guessed from a `--file` named `NAME.py` or
        /// `NAME.js` as `NAME.main`; else the server's, main.main).
        #[arg(long)]
        entry: Option<String>,
        /// A single source file; it is zipped, under its own name (keeping its executable
        /// bit), as the package. A zip given here is sent as the package.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// A zip package with the module files at its root.
        #[arg(long, value_name = "ZIP")]
        package: Option<PathBuf>,
        #[command(flatten)]
        limits: Limits,
    },
    /// List functions.
    List {
        /// Filter as key=value (e.g. all_projects=true); repeatable.
        #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
        filters: Vec<(String, String)>,
    },
    /// Show a function.
    Show {
        /// Function id or name.
        function: String,
    },
    /// Change a function's metadata, limits or code.
    #[command(group(ArgGroup::new("changes").required(true).multiple(true)
        .args(["name", "description", "entry", "file", "package", "cpu", "memory_size", "timeout", "network", "execution_mode"])))]
    Update {
        /// Function id or name.
        function: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New entry, `module.function`.
        #[arg(long)]
        entry: Option<String>,
        /// A single source file; it is zipped, under its own name, as the new package.
        #[arg(long, value_name = "PATH", conflicts_with = "package")]
        file: Option<PathBuf>,
        /// A new zip package.
        #[arg(long, value_name = "ZIP")]
        package: Option<PathBuf>,
        #[command(flatten)]
        limits: Limits,
    },
    /// Delete functions.
    Delete {
        /// Function ids or names.
        #[arg(required = true)]
        functions: Vec<String>,
    },
    /// Download a function's code package.
    Download {
        /// Function id or name.
        function: String,
        /// Where to write the zip (default: ./<id>.zip).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Run a function and print its output (and log); with --async, print the execution.
    Invoke {
        /// Function id or name.
        function: String,
        /// The input (`-`: standard input, `@FILE`: a file): a JSON object becomes keyword
        /// arguments, anything else one argument.
        #[arg(long, value_parser = crate::input_arg)]
        input: Option<String>,
        /// Return at once; the execution runs in the background.
        #[arg(long = "async")]
        asynchronous: bool,
        /// Function version to run (0 = the latest code).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Release all the function's workers (admin).
    Detach {
        /// Function id or name.
        function: String,
    },
    /// Add workers to the function (admin).
    ScaleUp {
        /// Function id or name.
        function: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Remove workers from the function, never the last one (admin).
    ScaleDown {
        /// Function id or name.
        function: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Versions: numbered snapshots of the function (`qinling function version …`).
    Version {
        #[command(subcommand)]
        command: crate::version::Command,
    },
    /// List the function's workers (admin).
    Workers {
        /// Function id or name.
        function: String,
        /// Function version (default 0).
        #[arg(long)]
        version: Option<u64>,
    },
}

/// Resource limits, network access and execution mode, sent only when given (the server
/// applies its defaults: no network, the runtime's execution mode).
#[derive(Debug, Default, clap::Args)]
pub struct Limits {
    /// CPU in millicpu.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub cpu: Option<u64>,
    /// Memory in bytes.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_size: Option<u64>,
    /// Timeout in seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Outbound network access: `--network` (or `--network true`) allows it, `--network false`
    /// takes it away. Without it a function reaches nothing but its own loopback.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub network: Option<bool>,
    /// `fork`: a fresh process per execution; `reuse`: executions run in the worker's
    /// long-lived process, so module state persists between them (python3 and nodejs only).
    /// Default: the runtime's (python3 fork, nodejs reuse).
    #[arg(long, value_name = "MODE", value_parser = ["fork", "reuse"])]
    pub execution_mode: Option<String>,
}

impl Limits {
    /// The limits as the form's text: (cpu, memory_size, timeout, network, execution_mode).
    fn text(&self) -> [Option<String>; 5] {
        let number = |v: Option<u64>| v.map(|v| v.to_string());
        [
            number(self.cpu),
            number(self.memory_size),
            number(self.timeout),
            self.network.map(|on| on.to_string()),
            self.execution_mode.clone(),
        ]
    }
}

/// The create form's text fields (the package goes as the file part).
fn create_body(
    runtime_id: String,
    code: String,
    name: Option<String>,
    description: Option<String>,
    entry: Option<String>,
    limits: &Limits,
) -> FunctionCreate {
    let [cpu, memory_size, timeout, network, execution_mode] = limits.text();
    FunctionCreate {
        runtime_id: Some(runtime_id),
        code: Some(code),
        name,
        description,
        entry,
        cpu,
        memory_size,
        timeout,
        network,
        execution_mode,
        package: None,
    }
}

/// The update form's text fields: `source=package` when a new package goes along (as
/// python-qinlingclient sends it; the server computes the checksum itself), and only the
/// fields given.
fn update_body(
    new_package: bool,
    name: Option<String>,
    description: Option<String>,
    entry: Option<String>,
    limits: &Limits,
) -> FunctionUpdate {
    let [cpu, memory_size, timeout, network, execution_mode] = limits.text();
    FunctionUpdate {
        source: new_package.then(|| "package".to_string()),
        code: None,
        name,
        description,
        entry,
        cpu,
        memory_size,
        timeout,
        network,
        execution_mode,
        package: None,
    }
}

/// `POST /v1/functions` with a package, as the multipart form python-qinlingclient sends.
pub(crate) async fn create(
    client: &Client,
    runtime_id: String,
    package: Package,
    name: Option<String>,
    description: Option<String>,
    entry: Option<String>,
    limits: &Limits,
) -> anyhow::Result<Value> {
    let code = json!({"source": "package", "md5sum": package.md5()}).to_string();
    let body = create_body(runtime_id, code, name, description, entry, limits);
    let mut form = Form::new();
    for (key, value) in form_fields(&body) {
        form = form.text(key, value);
    }
    let form = form.part("package", file_part(&package.file_name, package.data));
    client
        .json(
            client
                .request(Method::POST, &["v1", "functions"])
                .multipart(form),
        )
        .await
}

/// `PUT /v1/functions/{id}`: multipart with a new package, urlencoded without.
pub(crate) async fn update(
    client: &Client,
    id: &str,
    package: Option<Package>,
    name: Option<String>,
    description: Option<String>,
    entry: Option<String>,
    limits: &Limits,
) -> anyhow::Result<Value> {
    let fields = form_fields(&update_body(
        package.is_some(),
        name,
        description,
        entry,
        limits,
    ));
    let request = client.request(Method::PUT, &["v1", "functions", id]);
    let request = match package {
        Some(package) => {
            let mut form = Form::new();
            for (key, value) in fields {
                form = form.text(key, value);
            }
            request.multipart(form.part("package", file_part(&package.file_name, package.data)))
        }
        None => request.form(&fields),
    };
    client.json(request).await
}

pub(crate) async fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        Command::Create {
            runtime,
            name,
            description,
            entry,
            file,
            package,
            limits,
        } => {
            let package = Package::load(file.as_deref(), package.as_deref())?
                .expect("clap requires a code source");
            let entry = entry.or_else(|| {
                let guess = file.as_deref().and_then(guess_entry)?;
                eprintln!("note: no --entry given; using {guess}");
                Some(guess)
            });
            let runtime_id = RUNTIMES.resolve(client, &runtime).await?;
            let function = create(
                client,
                runtime_id,
                package,
                name,
                description,
                entry,
                &limits,
            )
            .await?;
            output::emit(&ctx.show(&function)?);
        }
        Command::List { filters } => {
            let functions = FUNCTIONS.list(client, &filters).await?;
            output::emit(&ctx.list(&functions, FUNCTIONS.columns)?);
        }
        Command::Show { function } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            output::emit(&ctx.show(&FUNCTIONS.get(client, &id).await?)?);
        }
        Command::Update {
            function,
            name,
            description,
            entry,
            file,
            package,
            limits,
        } => {
            let package = Package::load(file.as_deref(), package.as_deref())?;
            let id = FUNCTIONS.resolve(client, &function).await?;
            let updated = update(client, &id, package, name, description, entry, &limits).await?;
            output::emit(&ctx.show(&updated)?);
        }
        Command::Delete { functions } => FUNCTIONS.delete(client, &functions).await?,
        Command::Download { function, output } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let path = match output {
                Some(path) => path,
                None => std::env::current_dir()
                    .context("cannot find the current directory")?
                    .join(format!("{id}.zip")),
            };
            let query = [("download".to_string(), "true".to_string())];
            let response = client
                .send(client.request_with_query(Method::GET, &["v1", "functions", &id], &query))
                .await?;
            download_to(response, &path).await?;
            output::emit(&format!("Code package downloaded to {}\n", path.display()));
        }
        Command::Invoke {
            function,
            input,
            asynchronous,
            version,
        } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let target = execution::Target::Function { id, version };
            let execution = execution::create(client, target, input, !asynchronous, None).await?;
            if asynchronous || matches!(ctx.format, Format::Json | Format::Yaml) {
                output::emit(&ctx.show(&execution)?);
                if !asynchronous {
                    execution::check_succeeded(&execution)?;
                }
            } else {
                let execution_id = execution["id"].as_str().unwrap_or_default();
                let log = execution::log(client, execution_id).await?;
                if execution["status"] == "success" {
                    output::emit(&render_output(
                        execution::result_of(&execution).get("output"),
                    ));
                }
                // The log goes to stderr so that stdout is the function's output alone.
                if !log.is_empty() {
                    eprint!("{log}");
                    if !log.ends_with('\n') {
                        eprintln!();
                    }
                }
                execution::check_succeeded(&execution)?;
            }
        }
        Command::Detach { function } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            client
                .empty(client.request(Method::POST, &["v1", "functions", &id, "detach"]))
                .await?;
            output::emit(&format!(
                "Request to detach function {id} has been accepted.\n"
            ));
        }
        Command::Version { command } => crate::version::run(command, ctx).await?,
        Command::ScaleUp { function, count } => scale(ctx, &function, "up", count).await?,
        Command::ScaleDown { function, count } => scale(ctx, &function, "down", count).await?,
        Command::Workers { function, version } => {
            let id = FUNCTIONS.resolve(client, &function).await?;
            let query: Vec<(String, String)> = version
                .map(|v| ("function_version".to_string(), v.to_string()))
                .into_iter()
                .collect();
            let mut body = client
                .json(client.request_with_query(
                    Method::GET,
                    &["v1", "functions", &id, "workers"],
                    &query,
                ))
                .await?;
            let workers = match body.get_mut("workers").map(Value::take) {
                Some(Value::Array(workers)) => workers,
                _ => anyhow::bail!("the server's list of workers has no 'workers' array: {body}"),
            };
            output::emit(&ctx.list(&workers, WORKER_COLUMNS)?);
        }
    }
    Ok(())
}

async fn scale(ctx: &Ctx, function: &str, direction: &str, count: u64) -> anyhow::Result<()> {
    let client = &ctx.client;
    let id = FUNCTIONS.resolve(client, function).await?;
    let action = format!("scale_{direction}");
    let request = client
        .request(Method::POST, &["v1", "functions", &id, &action])
        .json(&Scale {
            count: Some(i64::try_from(count)?),
        });
    client.empty(request).await?;
    output::emit(&format!(
        "Request to scale {direction} function {id} has been accepted.\n"
    ));
    Ok(())
}

/// A function's output as printed by `invoke`: strings bare, other JSON compact, null nothing.
fn render_output(output: Option<&Value>) -> String {
    match output {
        None | Some(Value::Null) => String::new(),
        Some(value) => output::cell(value) + "\n",
    }
}

/// Streams the body to `<path>.part`, then renames it, so a failed download leaves no zip.
pub(crate) async fn download_to(
    mut response: reqwest::Response,
    path: &Path,
) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let written = async {
        let mut file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .context("the download was interrupted")?
        {
            file.write_all(&chunk)
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
    };
    let result = written.await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::client::Client;
    use crate::stub::{Stub, block_on};

    #[test]
    fn md5_of_known_inputs() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }

    #[test]
    fn entries_are_guessed_from_source_file_names() {
        let guess = |f: &str| guess_entry(Path::new(f));
        assert_eq!(guess("hello.py").as_deref(), Some("hello.main"));
        assert_eq!(guess("dir/my_fn.js").as_deref(), Some("my_fn.main"));
        assert_eq!(guess("hello.zip"), None);
        assert_eq!(guess("run.sh"), None);
        assert_eq!(guess("bad name.py"), None);
    }

    #[test]
    fn a_zip_given_as_a_file_is_sent_as_it_is() {
        let dir = std::env::temp_dir().join(format!("qinling-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zip = zip_single_file("hello.py", b"def main(**kw):\n    return 1\n").unwrap();
        let path = dir.join("hello.zip");
        std::fs::write(&path, &zip).unwrap();
        let p = Package::load(Some(&path), None).unwrap().unwrap();
        assert_eq!((p.file_name.as_str(), p.data), ("hello.zip", zip));
        let src = dir.join("hello.py");
        std::fs::write(&src, b"x = 1\n").unwrap();
        let p = Package::load(Some(&src), None).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(p.file_name, "hello.py.zip");
        assert!(is_zip(&p.data));
    }

    #[test]
    fn a_single_file_zip_holds_exactly_the_file() {
        let source = b"def main(name='World', **kwargs):\n    return 'Hello, %s' % name\n";
        let data = zip_single_file("hello.py", source).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&data)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "hello.py");
        assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, source);
        drop(entry);
        assert_eq!(
            zip_single_file("hello.py", source).unwrap(),
            data,
            "the same file makes the same zip"
        );
    }

    #[test]
    fn packages_from_a_file_or_a_zip() {
        let dir = std::env::temp_dir().join(format!("qinling-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let source = dir.join("sub").join("hello.py");
        std::fs::write(&source, "x = 1\n").unwrap();
        let zip_path = dir.join("code.zip");
        std::fs::write(&zip_path, b"PK\x05\x06not really").unwrap();

        let package = Package::load(Some(&source), None).unwrap().unwrap();
        assert_eq!(package.file_name, "hello.py.zip");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&package.data)).unwrap();
        assert_eq!(
            archive.by_index(0).unwrap().name().unwrap(),
            "hello.py",
            "the basename, at the root"
        );
        assert_eq!(package.md5(), md5_hex(&package.data));

        let package = Package::load(None, Some(&zip_path)).unwrap().unwrap();
        assert_eq!(
            (package.file_name.as_str(), package.data.as_slice()),
            ("code.zip", &b"PK\x05\x06not really"[..])
        );

        assert!(Package::load(None, None).unwrap().is_none());
        let missing = dir.join("missing.py");
        assert_eq!(
            Package::load(Some(&missing), None).unwrap_err().to_string(),
            format!("cannot read {}", missing.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn optional_fields_are_sent_only_when_given() {
        let limits = Limits {
            cpu: None,
            memory_size: Some(67108864),
            timeout: Some(9),
            network: Some(true),
            execution_mode: Some("reuse".into()),
        };
        let fields = |new_package| {
            form_fields(&update_body(
                new_package,
                Some("n".into()),
                None,
                Some("hello.main".into()),
                &limits,
            ))
        };
        let expected = |with_source: bool| {
            let mut out: Vec<(String, String)> = Vec::new();
            if with_source {
                out.push(("source".into(), "package".into()));
            }
            for (k, v) in [
                ("name", "n"),
                ("entry", "hello.main"),
                ("memory_size", "67108864"),
                ("timeout", "9"),
                ("network", "true"),
                ("execution_mode", "reuse"),
            ] {
                out.push((k.into(), v.into()));
            }
            out
        };
        assert_eq!(fields(false), expected(false));
        assert_eq!(fields(true), expected(true));
    }

    #[test]
    fn output_rendering() {
        assert_eq!(render_output(Some(&json!("Hello, Bob"))), "Hello, Bob\n");
        assert_eq!(
            render_output(Some(&json!({"greeting": "hi", "n": 1}))),
            "{\"greeting\":\"hi\",\"n\":1}\n"
        );
        assert_eq!(render_output(Some(&Value::Null)), "");
        assert_eq!(render_output(None), "");
    }

    #[test]
    fn create_sends_the_form_python_qinlingclient_sends() {
        let runtime_id = "a2819aff-7cc5-441b-b154-1ac97fc626ba";
        let function = json!({"id": "f", "name": "hello"});
        let stub = Stub::serve(vec![(201, "application/json", function.to_string())]);
        let ctx = Ctx {
            client: Client::new(&stub.url, None).unwrap(),
            format: Format::Json,
            columns: Vec::new(),
        };
        let dir = std::env::temp_dir().join(format!("qinling-cli-create-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("hello.py");
        std::fs::write(&source, "def main():\n    return 1\n").unwrap();

        let cmd = Command::Create {
            runtime: runtime_id.into(),
            name: Some("hello".into()),
            description: None,
            entry: Some("hello.main".into()),
            file: Some(source.clone()),
            package: None,
            limits: Limits {
                cpu: None,
                memory_size: None,
                timeout: Some(7),
                network: None,
                execution_mode: None,
            },
        };
        block_on(run(cmd, &ctx)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let request = stub.requests().remove(0);
        assert!(
            request.head.starts_with("POST /v1/functions HTTP/1.1\r\n"),
            "{}",
            request.head
        );
        assert!(
            request
                .header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );
        let body = request.body_text();
        let md5 = md5_hex(&zip_single_file("hello.py", b"def main():\n    return 1\n").unwrap());
        let field = |name: &str, value: &str| {
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
        };
        for expected in [
            field("runtime_id", runtime_id),
            field(
                "code",
                &format!(r#"{{"source":"package","md5sum":"{md5}"}}"#),
            ),
            field("name", "hello"),
            field("entry", "hello.main"),
            field("timeout", "7"),
            "Content-Disposition: form-data; name=\"package\"; filename=\"hello.py.zip\""
                .to_string(),
        ] {
            assert!(body.contains(&expected), "{expected:?} not in {body}");
        }
        assert!(!body.contains("name=\"description\""));
        assert!(!body.contains("name=\"cpu\""));
    }

    #[test]
    fn metadata_updates_are_urlencoded() {
        let id = "879d3625-5710-4ffa-b163-843b0e8bf4d6";
        let stub = Stub::serve(vec![(
            200,
            "application/json",
            json!({"id": id}).to_string(),
        )]);
        let ctx = Ctx {
            client: Client::new(&stub.url, None).unwrap(),
            format: Format::Value,
            columns: Vec::new(),
        };
        let cmd = Command::Update {
            function: id.into(),
            name: Some("n 2".into()),
            description: None,
            entry: None,
            file: None,
            package: None,
            limits: Limits {
                cpu: None,
                memory_size: None,
                timeout: Some(7),
                network: None,
                execution_mode: None,
            },
        };
        block_on(run(cmd, &ctx)).unwrap();
        let request = stub.requests().remove(0);
        assert!(
            request
                .head
                .starts_with(&format!("PUT /v1/functions/{id} HTTP/1.1\r\n")),
            "{}",
            request.head
        );
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(request.body_text(), "name=n+2&timeout=7");
    }

    #[test]
    fn network_flag_forms() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Command,
        }
        let network = |args: &[&str]| {
            let mut argv = vec!["qinling", "update", "f"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).map(|c| c.cmd) {
                Ok(Command::Update { limits, .. }) => Ok(limits.network),
                Ok(_) => unreachable!(),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(network(&["--network"]), Ok(Some(true)));
        assert_eq!(network(&["--network", "true"]), Ok(Some(true)));
        assert_eq!(network(&["--network", "false"]), Ok(Some(false)));
        assert_eq!(network(&["--timeout", "3"]), Ok(None));
        assert_eq!(
            network(&["--network", "maybe"]),
            Err(clap::error::ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn execution_mode_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Command,
        }
        let parse = |args: &[&str]| {
            let mut argv = vec!["qinling"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|c| c.cmd)
        };
        let mode = |args: &[&str]| match parse(args) {
            Ok(Command::Update { limits, .. } | Command::Create { limits, .. }) => {
                limits.execution_mode
            }
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(
            mode(&["update", "f", "--execution-mode", "reuse"]).as_deref(),
            Some("reuse")
        );
        assert_eq!(
            mode(&[
                "create",
                "--runtime",
                "rt",
                "--file",
                "a.py",
                "--execution-mode",
                "fork"
            ])
            .as_deref(),
            Some("fork")
        );
        // The flag alone is a change an update may consist of.
        assert_eq!(mode(&["update", "f", "--timeout", "3"]), None);
        // A bad value is refused here, with the choices listed.
        let Err(e) = parse(&["update", "f", "--execution-mode", "spawn"]) else {
            panic!("accepted")
        };
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
        let text = e.to_string();
        assert!(text.contains("[possible values: fork, reuse]"), "{text}");
    }
}
