//! The client's configuration file: named profiles of a server URL and a token, so that
//! `--url`/`--token` need not be typed each time. `qinling login` checks a URL and token
//! against the server and saves them; every command then reads the profile that
//! `--profile`/`QINLING_PROFILE` names (`default` otherwise). Flags and `QINLING_URL`/
//! `QINLING_TOKEN` still win over the file. The file is `$QINLING_CLI_CONFIG`, else
//! `$XDG_CONFIG_HOME/qinling/config.toml`, else `~/.config/qinling/config.toml`, written with
//! mode 0600 since it holds tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Ctx, output};

/// The URL when neither a flag, the environment nor a profile gives one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the file is (see the module's comment); `None` when there is no home to put it in.
pub fn path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("QINLING_CLI_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("qinling").join("config.toml"))
}

fn read() -> anyhow::Result<File> {
    let Some(path) = path() else {
        return Ok(File::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The profile `name`; an absent file or profile is an empty one, unless the profile was
/// asked for by name (then its absence is an error that lists what there is).
pub fn load(name: Option<&str>) -> anyhow::Result<Profile> {
    let file = read()?;
    match name {
        None => Ok(file.profiles.get("default").cloned().unwrap_or_default()),
        Some(name) => file.profiles.get(name).cloned().with_context(|| {
            let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            format!(
                "no profile '{name}' in {} (profiles: {}); `qinling login --profile {name} --url …` makes one",
                path().map(|p| p.display().to_string()).unwrap_or_default(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        }),
    }
}

/// Saves `profile` as `name`, keeping the others; the file is created 0600.
pub fn save(name: &str, profile: Profile) -> anyhow::Result<PathBuf> {
    let path =
        path().context("no home directory to keep the configuration in; set QINLING_CLI_CONFIG")?;
    let mut file = read()?;
    file.profiles.insert(name.to_string(), profile);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = toml::to_string(&file).context("cannot write the configuration")?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("toml.tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `qinling login`: checks the URL and token (a request that needs both), then saves them.
pub(crate) async fn login(
    ctx: &Ctx,
    name: Option<&str>,
    url: &str,
    token: Option<String>,
) -> anyhow::Result<()> {
    let client = &ctx.client;
    client
        .json(client.request(Method::GET, &["v1", "functions"]))
        .await
        .with_context(|| format!("cannot log in to {url}"))?;
    let name = name.unwrap_or("default");
    let path = save(
        name,
        Profile {
            url: Some(url.to_string()),
            token,
        },
    )?;
    output::emit(&format!(
        "Logged in to {url}; saved as profile '{name}' in {}\n",
        path.display()
    ));
    Ok(())
}
