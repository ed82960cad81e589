//! Tokens: JWTs (HS256) for users and services, and sandbox tokens for agent-to-gateway calls
//! (the model proxy among them): random, issued to one run of one session's sandbox, valid for a
//! short lease the session's hub renews while the run lives, and revoked when that run ends. A token never reaches another organisation's session: the gateway
//! compares the principal's organisation (and session restriction) with the session's on every
//! access.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sha2::{Digest, Sha256};

use crate::GatewayError;
use crate::protocol::v1::{Principal, PrincipalKind, Scope, TokenClaims};

/// The claims of a Proliferate JWT (the wire type, under its engine name).
pub type Claims = TokenClaims;

/// Claims for `subject` in `organization` with `scopes`, valid for `lifetime` from now.
pub fn claims(
    subject: &str,
    organization: &str,
    scopes: &[Scope],
    lifetime: std::time::Duration,
) -> Claims {
    let now = crate::clock::now_seconds();
    Claims {
        sub: subject.to_owned(),
        org: organization.to_owned(),
        scopes: scopes.to_vec(),
        kind: PrincipalKind::User,
        sid: None,
        exp: now + lifetime.as_secs() as i64,
        iat: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        iss: None,
        aud: None,
    }
}

/// Signs and verifies tokens with the gateway's secrets.
#[derive(Clone)]
pub struct Authenticator {
    user_secret: Vec<u8>,
    service_secret: Vec<u8>,
    sandbox_tokens: Arc<Mutex<HashMap<String, SandboxToken>>>,
    max_lifetime: Duration,
    /// Revoked token ids, each with the organisation whose tokens it stops.
    revoked: Arc<Mutex<HashSet<(String, String)>>>,
    /// The `iss` user tokens must name, if set.
    issuer: Option<String>,
    /// The `aud` user tokens must name, if set.
    audience: Option<String>,
}

/// The longest a user or service token may be valid, from issue to expiry, unless the server
/// sets another maximum.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the gateway keeps of a sandbox token: its digest and the end of its lease.
#[derive(Debug, Clone, Copy)]
struct SandboxToken {
    digest: [u8; 32],
    expires: tokio::time::Instant,
}

/// The environment variable that holds a sandbox's token inside it.
pub const SANDBOX_TOKEN_VARIABLE: &str = "PROLIFERATE_SANDBOX_TOKEN";

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Authenticator { <secrets redacted> }")
    }
}

fn sign(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap_or_default()
}

impl Authenticator {
    /// Users' tokens are signed with `user_secret`; back ends sign their own service tokens
    /// with `service_secret`. Sandbox tokens derive from `user_secret`.
    pub fn new(user_secret: impl Into<Vec<u8>>, service_secret: impl Into<Vec<u8>>) -> Self {
        Self {
            user_secret: user_secret.into(),
            service_secret: service_secret.into(),
            sandbox_tokens: Arc::default(),
            max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            revoked: Arc::default(),
            issuer: None,
            audience: None,
        }
    }

    /// The seal of the bus between gateways that share this service secret.
    pub(crate) fn bus_seal(&self) -> crate::bus::seal::Seal {
        crate::bus::seal::Seal::new(&self.service_secret)
    }

    /// Accepts only user tokens whose `iss` is `issuer` and whose `aud` is `audience`, where
    /// set; tokens this authenticator mints name them. Service tokens, which back ends sign with
    /// the service secret, are not checked.
    pub fn with_issuer_and_audience(
        mut self,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Self {
        self.issuer = issuer;
        self.audience = audience;
        self
    }

    /// Refuses tokens valid for longer than `lifetime` from their issue.
    pub fn with_max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// The longest a token may be valid.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Stops `organization_id`'s tokens whose `jti` is `jti`.
    pub fn revoke(&self, jti: &str, organization_id: &str) {
        self.revoked
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert((jti.to_owned(), organization_id.to_owned()));
    }

    /// A signed user token, naming this server's issuer and audience unless `claims` name
    /// their own.
    pub fn mint(&self, claims: &Claims) -> String {
        let claims = Claims {
            iss: claims.iss.clone().or_else(|| self.issuer.clone()),
            aud: claims.aud.clone().or_else(|| self.audience.clone()),
            ..claims.clone()
        };
        sign(&self.user_secret, &claims)
    }

    /// A signed service token (what a back end holding the service secret would make).
    pub fn mint_service(&self, claims: &Claims) -> String {
        let claims = Claims {
            kind: PrincipalKind::Service,
            ..claims.clone()
        };
        sign(&self.service_secret, &claims)
    }

    /// Issues a new sandbox token for a run of `session_id`'s sandbox, valid for `lease`,
    /// revoking the last one: 32 random bytes, hex. Only its digest is kept.
    pub fn issue_sandbox_token(&self, session_id: &str, lease: Duration) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let issued = SandboxToken {
            digest: digest(&token),
            expires: tokio::time::Instant::now() + lease,
        };
        self.sandbox_tokens().insert(session_id.to_owned(), issued);
        token
    }

    /// Extends the lease of `session_id`'s sandbox token to `lease` from now, if it has one
    /// that has not lapsed: its run is still alive.
    pub fn renew_sandbox_token(&self, session_id: &str, lease: Duration) {
        let now = tokio::time::Instant::now();
        if let Some(token) = self.sandbox_tokens().get_mut(session_id)
            && token.expires > now
        {
            token.expires = now + lease;
        }
    }

    /// Revokes `session_id`'s sandbox token: its run ended.
    pub fn revoke_sandbox_token(&self, session_id: &str) {
        self.sandbox_tokens().remove(session_id);
    }

    fn sandbox_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, SandboxToken>> {
        self.sandbox_tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Verifies a token. `session_id` is the session the request is about, which is the only
    /// session a sandbox token can reach. Sandbox principals carry an empty organisation; the
    /// gateway fills it from the session.
    pub fn verify(&self, token: &str, session_id: Option<&str>) -> Result<Principal, GatewayError> {
        if token.is_empty() {
            return Err(GatewayError::Unauthenticated("no token".into()));
        }
        if !token.contains('.') {
            return self.verify_sandbox(token, session_id);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let service_validation = validation.clone();
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let decoded = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.user_secret),
            &validation,
        )
        .or_else(|error| match error.kind() {
            ErrorKind::InvalidSignature => jsonwebtoken::decode::<Claims>(
                token,
                &DecodingKey::from_secret(&self.service_secret),
                &service_validation,
            )
            .and_then(|decoded| {
                if decoded.claims.kind == PrincipalKind::Service {
                    Ok(decoded)
                } else {
                    Err(ErrorKind::InvalidSignature.into())
                }
            }),
            _ => Err(error),
        })
        .map_err(|error| match error.kind() {
            ErrorKind::ExpiredSignature => GatewayError::TokenExpired,
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => GatewayError::Unauthenticated(
                "the token's issuer or audience is not this server's".into(),
            ),
            ErrorKind::MissingRequiredClaim(claim) => {
                GatewayError::Unauthenticated(format!("the token has no `{claim}`"))
            }
            _ => GatewayError::Unauthenticated("invalid token".into()),
        })?;
        let claims = decoded.claims;
        if claims.kind == PrincipalKind::Sandbox {
            return Err(GatewayError::Unauthenticated("invalid token".into()));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime.as_secs() as i64 {
            return Err(GatewayError::Unauthenticated(format!(
                "the token is valid for longer than this server allows ({} s)",
                self.max_lifetime.as_secs()
            )));
        }
        let revoked = (self.revoked.lock())
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(&(claims.jti.clone(), claims.org.clone()));
        if revoked {
            return Err(GatewayError::Unauthenticated(
                "the token was revoked".into(),
            ));
        }
        Ok(Principal {
            subject: claims.sub,
            organization_id: claims.org,
            scopes: claims.scopes,
            kind: claims.kind,
            session_id: claims.sid,
        })
    }

    fn verify_sandbox(
        &self,
        token: &str,
        session_id: Option<&str>,
    ) -> Result<Principal, GatewayError> {
        let session_id =
            session_id.ok_or_else(|| GatewayError::Unauthenticated("invalid token".into()))?;
        let issued = self.sandbox_tokens().get(session_id).copied();
        match issued {
            Some(issued) if issued.digest == digest(token) => {
                if issued.expires <= tokio::time::Instant::now() {
                    return Err(GatewayError::TokenExpired);
                }
            }
            _ => return Err(GatewayError::Unauthenticated("invalid token".into())),
        }
        Ok(Principal {
            subject: format!("sandbox:{session_id}"),
            organization_id: String::new(),
            scopes: vec![Scope::Read, Scope::Write],
            kind: PrincipalKind::Sandbox,
            session_id: Some(session_id.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    fn verify(authenticator: &Authenticator, token: &str) -> Result<Principal, GatewayError> {
        authenticator.verify(token, Some("ses_1"))
    }

    #[test]
    fn a_server_with_an_issuer_and_audience_accepts_only_user_tokens_that_name_them() {
        let plain = Authenticator::new("user", "service");
        let checking = Authenticator::new("user", "service")
            .with_issuer_and_audience(Some("https://id.acme".into()), Some("gateway".into()));
        let claims = claims("ada", "acme", &[Scope::Read], Duration::from_secs(60));
        let named = |iss: Option<&str>, aud: Option<&str>| {
            plain.mint(&Claims {
                iss: iss.map(Into::into),
                aud: aud.map(Into::into),
                ..claims.clone()
            })
        };

        assert_eq!(
            checking
                .verify(&checking.mint(&claims), None)
                .unwrap()
                .subject,
            "ada",
            "its own tokens name them"
        );
        assert!(
            checking
                .verify(&named(Some("https://id.acme"), Some("gateway")), None)
                .is_ok()
        );
        for (iss, aud) in [
            (None, None),
            (Some("https://id.acme"), None),
            (None, Some("gateway")),
            (Some("https://evil"), Some("gateway")),
            (Some("https://id.acme"), Some("another")),
        ] {
            let refused = checking.verify(&named(iss, aud), None);
            assert!(
                matches!(refused, Err(GatewayError::Unauthenticated(_))),
                "{iss:?} {aud:?}: {refused:?}"
            );
        }
        // Service tokens are the back ends' own, and are not checked.
        assert!(
            checking
                .verify(&checking.mint_service(&claims), None)
                .is_ok()
        );
        // A server that sets neither takes tokens without them.
        assert!(plain.verify(&named(None, None), None).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sandbox_token_lapses_unless_its_lease_is_renewed() {
        let authenticator = Authenticator::new("user", "service");
        let token = authenticator.issue_sandbox_token("ses_1", LEASE);
        tokio::time::advance(LEASE - Duration::from_secs(1)).await;
        assert_eq!(
            verify(&authenticator, &token).unwrap().kind,
            PrincipalKind::Sandbox
        );
        authenticator.renew_sandbox_token("ses_1", LEASE);
        tokio::time::advance(LEASE - Duration::from_secs(1)).await;
        assert!(verify(&authenticator, &token).is_ok(), "renewed in time");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(
            verify(&authenticator, &token),
            Err(GatewayError::TokenExpired)
        ));
        authenticator.renew_sandbox_token("ses_1", LEASE);
        assert!(
            matches!(
                verify(&authenticator, &token),
                Err(GatewayError::TokenExpired)
            ),
            "a lapsed lease is not revived"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sandbox_token_is_bound_to_its_session_and_its_run() {
        let authenticator = Authenticator::new("user", "service");
        let first = authenticator.issue_sandbox_token("ses_1", LEASE);
        assert!(verify(&authenticator, &first).is_ok(), "control");
        assert!(authenticator.verify(&first, Some("ses_2")).is_err());
        assert!(authenticator.verify(&first, None).is_err());
        let second = authenticator.issue_sandbox_token("ses_1", LEASE);
        assert!(
            verify(&authenticator, &first).is_err(),
            "a new run revokes the last"
        );
        assert!(verify(&authenticator, &second).is_ok());
        authenticator.revoke_sandbox_token("ses_1");
        assert!(verify(&authenticator, &second).is_err());
    }
}
