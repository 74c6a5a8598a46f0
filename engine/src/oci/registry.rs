//! The distribution API's two reads, manifests and blobs, over the process's
//! HTTP client: bounded in size and time, authenticated as a container
//! runtime does (a 401's challenge answered with the docker config's
//! credentials: Basic, or a Bearer token from the challenge's realm).

use std::io::Read;
use std::time::Duration;

use super::{OciError, Reference, credentials};

/// What a manifest request accepts, index and manifest, OCI and Docker.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The most a manifest or index may be (the spec's registries refuse past 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// The most a token response may be.
const TOKEN_LIMIT: u64 = 1 << 20;

/// A session with one registry for one repository.
pub struct Registry<'a> {
    reference: &'a Reference,
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl<'a> Registry<'a> {
    /// A session; nothing is sent yet.
    pub fn new(reference: &'a Reference) -> Registry<'a> {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .max_redirects(5)
            .user_agent(concat!("bpfcompat/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Registry {
            reference,
            agent,
            authorization: None,
        }
    }

    /// The manifest or index `reference` names: its bytes and media type.
    pub fn manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String), OciError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.reference.base_url(),
            self.reference.repository
        );
        let (bytes, content_type) =
            self.get(&url, Some(MANIFEST_TYPES), MANIFEST_LIMIT, "a manifest")?;
        Ok((bytes, content_type))
    }

    /// The blob `digest`, at most `limit` bytes.
    pub fn blob(&mut self, digest: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.reference.base_url(),
            self.reference.repository
        );
        Ok(self.get(&url, None, limit, "a layer")?.0)
    }

    /// GET `url`, answering one authentication challenge.
    fn get(
        &mut self,
        url: &str,
        accept: Option<&str>,
        limit: u64,
        what: &str,
    ) -> Result<(Vec<u8>, String), OciError> {
        for attempt in 0..2 {
            let mut req = self.agent.get(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(auth) = &self.authorization {
                req = req.header("Authorization", auth);
            }
            let response = req.call().map_err(|e| self.unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            if status == 401 && attempt == 0 {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.authorization = Some(self.answer(&challenge)?);
                continue;
            }
            if status != 200 {
                return Err(OciError::Status {
                    reference: self.reference.to_string(),
                    url: url.to_string(),
                    status,
                    hint: match status {
                        401 | 403 => {
                            "the registry refused these credentials: log in with `docker login`, which writes them to ~/.docker/config.json (or $DOCKER_CONFIG)"
                        }
                        404 => "no such repository, tag or digest in this registry",
                        _ => "the registry could not serve it",
                    },
                });
            }
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let mut body = Vec::new();
            response
                .into_body()
                .into_reader()
                .take(limit + 1)
                .read_to_end(&mut body)
                .map_err(|e| self.unreachable(e.to_string()))?;
            if body.len() as u64 > limit {
                return Err(OciError::TooLarge {
                    what: what.to_string(),
                    url: url.to_string(),
                    limit,
                });
            }
            return Ok((body, content_type));
        }
        unreachable!("the second attempt returns")
    }

    /// The Authorization header that answers `challenge`.
    fn answer(&self, challenge: &str) -> Result<String, OciError> {
        let creds = credentials::for_registry(&self.reference.registry);
        let basic = creds.as_ref().map(credentials::Credentials::basic);
        let needs = || OciError::NeedsCredentials {
            registry: self.reference.registry.clone(),
        };
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(needs),
            "bearer" => {
                let param = |name: &str| challenge_param(params, name);
                let realm = param("realm").ok_or_else(|| {
                    self.unreachable(format!("a Bearer challenge without a realm: {challenge}"))
                })?;
                if !(realm.starts_with("https://") || realm.starts_with("http://")) {
                    return Err(
                        self.unreachable(format!("a token realm that is not an HTTP URL: {realm}"))
                    );
                }
                let scope = param("scope")
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                let mut req = self.agent.get(&realm).query("scope", &scope);
                if let Some(service) = param("service") {
                    req = req.query("service", &service);
                }
                if let Some(b) = &basic {
                    req = req.header("Authorization", b);
                }
                let response = req.call().map_err(|e| self.unreachable(e.to_string()))?;
                if response.status().as_u16() != 200 {
                    return Err(match basic {
                        Some(_) => OciError::Status {
                            reference: self.reference.to_string(),
                            url: realm,
                            status: response.status().as_u16(),
                            hint: "the token service refused these credentials",
                        },
                        None => needs(),
                    });
                }
                let mut body = Vec::new();
                response
                    .into_body()
                    .into_reader()
                    .take(TOKEN_LIMIT)
                    .read_to_end(&mut body)
                    .map_err(|e| self.unreachable(e.to_string()))?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|e| self.unreachable(format!("an unreadable token response: {e}")))?;
                let token = t.token.or(t.access_token).ok_or_else(|| {
                    self.unreachable("a token response without a token".to_string())
                })?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(self.unreachable(format!(
                "an authentication challenge bpfcompat does not answer: `{}`",
                challenge.chars().take(200).collect::<String>()
            ))),
        }
    }

    fn unreachable(&self, why: String) -> OciError {
        OciError::Unreachable {
            registry: self.reference.registry.clone(),
            why,
        }
    }
}

/// One `name="value"` of a challenge's parameters.
fn challenge_param(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim();
        let after = &rest[eq + 1..];
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value.to_string());
        }
        rest = tail;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenges_parameters_are_read_as_registries_write_them() {
        let p = r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#;
        assert_eq!(
            challenge_param(p, "realm").as_deref(),
            Some("https://auth.example/token")
        );
        assert_eq!(
            challenge_param(p, "scope").as_deref(),
            Some("repository:a/b:pull")
        );
        assert_eq!(challenge_param(p, "nothing"), None);
    }
}
