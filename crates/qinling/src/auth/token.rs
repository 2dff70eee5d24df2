//! `qinling token create|list|revoke`: API tokens for `auth.mode = "token"`, made on the
//! server's machine against its database (the data directory's, or `--database`) (like `keystone-manage
//! bootstrap`), not over the API — whoever can read the data directory is the operator.
//! `create` prints the secret alone on stdout (once; only its SHA-256 is stored).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use qinling_engine::auth::tokens::{Tokens, parse_lifetime};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The server's data directory (its database is changed directly).
    #[arg(long, env = "QINLING_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The server's PostgreSQL database (`postgres://…`), if it has one instead of SQLite in
    /// the data directory.
    #[arg(long, env = "QINLING_DATABASE", global = true)]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token bound to a project, a user and roles; prints the secret.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        user: String,
        /// Comma-separated roles; `admin` makes the token an admin's.
        #[arg(long, default_value = "member", value_delimiter = ',')]
        roles: Vec<String>,
        /// Lifetime such as 3600s, 12h, 30d, 2w (default: 30d); `never` for no expiry.
        #[arg(long, default_value = "30d")]
        expires_in: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Output format.
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: qinling_cli::Format,
        /// Show only this column; repeat for more, in that order.
        #[arg(short = 'c', long = "column", value_name = "COLUMN")]
        columns: Vec<String>,
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke { id: String },
}

pub fn main(args: TokenArgs) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qinling token: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(crate::serve::default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let database = crate::serve::database(
        args.database.as_deref(),
        &data_dir,
        qinling_store::PgConfig::new(""),
    )?;
    let store = qinling_store::Store::connect(&database)
        .await
        .context("opening the database")?;
    let tokens = Tokens::new(store.clone());
    let now = qinling_types::now().unix_timestamp();
    match args.command {
        TokenCommand::Create {
            project,
            user,
            roles,
            expires_in,
            description,
        } => {
            let lifetime = if expires_in == "never" {
                None
            } else {
                Some(parse_lifetime(&expires_in)?)
            };
            let roles: Vec<String> = roles
                .into_iter()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect();
            let t = tokens
                .create(&project, &user, roles, lifetime, description, now)
                .await?;
            eprintln!(
                "created token {} for project {} user {} roles {} expires {}",
                t.row.id,
                t.row.project_id,
                t.row.user_id,
                t.row.roles.join(","),
                show_time(t.row.expires_at)
            );
            println!("{}", t.secret);
        }
        TokenCommand::List { format, columns } => {
            let mut rows = Vec::new();
            for t in tokens.list().await? {
                let state = match qinling_engine::auth::tokens::check(&t, now) {
                    Ok(()) => "active",
                    Err(qinling_engine::auth::tokens::Invalid::Revoked) => "revoked",
                    Err(_) => "expired",
                };
                rows.push(serde_json::json!({
                    "id": t.id,
                    "project": t.project_id,
                    "user": t.user_id,
                    "roles": t.roles.join(","),
                    "created": show_time(Some(t.created_at)),
                    "expires": show_time(t.expires_at),
                    "state": state,
                    "description": t.description.unwrap_or_default(),
                }));
            }
            qinling_cli::print_list(
                format,
                &columns,
                &rows,
                &[
                    "id",
                    "project",
                    "user",
                    "roles",
                    "created",
                    "expires",
                    "state",
                    "description",
                ],
            )?;
        }
        TokenCommand::Revoke { id } => {
            tokens.revoke(&id, now).await?;
            eprintln!("revoked token {id}");
        }
    }
    store.close().await;
    Ok(())
}

fn show_time(t: Option<i64>) -> String {
    match t.and_then(|t| qinling_types::Timestamp::from_unix_timestamp(t).ok()) {
        Some(t) => qinling_types::format_ts(t),
        None => "never".into(),
    }
}
