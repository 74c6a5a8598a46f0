//! A registry's credentials from the standard docker config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), as
//! `docker login` writes them: `auths.<registry>.auth` (base64 of
//! `user:password`) or `username`/`password`. Credential helpers are not run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;

/// A user and password for one registry.
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// The `Authorization` header value for HTTP Basic.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The docker config file this process would read.
fn config_file() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

/// The credentials stored for `registry` (`host[:port]`), if any; an
/// unreadable or malformed file counts as none.
pub fn for_registry(registry: &str) -> Option<Credentials> {
    let text = crate::safe::read_text_input(&config_file()?, 1 << 20).ok()?;
    from_config(&text, registry)
}

fn from_config(text: &str, registry: &str) -> Option<Credentials> {
    let config: Config = serde_json::from_str(text).ok()?;
    // Keys are written as the host, or as a URL of it.
    let entry = config.auths.iter().find_map(|(k, v)| {
        let host = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        (host == registry).then_some(v)
    })?;
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Some(Credentials {
            user: user.clone(),
            password: password.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_logins_entry_is_found_by_host_in_either_form() {
        let text = r#"{"auths": {
            "https://127.0.0.1:5000/v1/": {"auth": "dXNlcjpzM2NyZXQ="},
            "other.example": {"username": "u", "password": "p"}
        }}"#;
        let c = from_config(text, "127.0.0.1:5000").unwrap();
        assert_eq!(c.basic(), "Basic dXNlcjpzM2NyZXQ=");
        assert_eq!(from_config(text, "other.example").unwrap().user, "u");
        assert!(from_config(text, "third.example").is_none());
        assert!(from_config("not json", "other.example").is_none());
    }
}
