//! How the client authenticates: a fixed token, a caller-supplied token source (refreshed when
//! the gateway says `token_expired`), or service credentials that sign short-lived tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proliferate_core::protocol::v1::{PrincipalKind, Scope, TokenClaims};

use crate::ClientError;

/// Supplies bearer tokens. Called before every request and connection attempt, and again with
/// `refresh = true` after the gateway answered `token_expired`.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token to use now.
    async fn token(&self, refresh: bool) -> Result<String, ClientError>;
}

/// The client's credentials.
#[derive(Clone)]
pub enum Auth {
    /// One fixed bearer token.
    Token(String),
    /// Tokens from the application, refreshed on expiry.
    Source(Arc<dyn TokenSource>),
    /// A back end's service credentials: the client signs its own short-lived service tokens.
    Service {
        /// The service's name (the token's subject).
        name: String,
        /// The organisation the service acts for.
        organization: String,
        /// The gateway's service secret.
        secret: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => formatter.write_str("Auth::Token(<redacted>)"),
            Self::Source(_) => formatter.write_str("Auth::Source"),
            Self::Service {
                name, organization, ..
            } => write!(formatter, "Auth::Service({name}, {organization})"),
        }
    }
}

/// Lifetime of the service tokens the client signs.
const SERVICE_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

impl Auth {
    /// Credentials from optional fields, as bindings receive them: a token alone, a token
    /// source alone, or a service's name, organization and secret together. Anything else is a
    /// configuration error.
    pub fn from_fields(
        token: Option<String>,
        source: Option<Arc<dyn TokenSource>>,
        service_name: Option<String>,
        service_organization: Option<String>,
        service_secret: Option<String>,
    ) -> Result<Self, ClientError> {
        let service = (service_name, service_organization, service_secret);
        match (token, source, service) {
            (Some(token), None, (None, None, None)) => Ok(Self::Token(token)),
            (None, Some(source), (None, None, None)) => Ok(Self::Source(source)),
            (None, None, (Some(name), Some(organization), Some(secret))) => Ok(Self::Service {
                name,
                organization,
                secret,
            }),
            _ => Err(ClientError::Config(
                "give one of a token, a token source, or a service's name, organization and secret"
                    .into(),
            )),
        }
    }

    /// A token to send now.
    pub(crate) async fn token(&self, refresh: bool) -> Result<String, ClientError> {
        match self {
            Self::Token(token) => Ok(token.clone()),
            Self::Source(source) => source.token(refresh).await,
            Self::Service {
                name,
                organization,
                secret,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs() as i64);
                let claims = TokenClaims {
                    sub: name.clone(),
                    org: organization.clone(),
                    scopes: vec![Scope::Read, Scope::Write],
                    kind: PrincipalKind::Service,
                    sid: None,
                    iat: now,
                    exp: now + SERVICE_TOKEN_LIFETIME.as_secs() as i64,
                    jti: uuid::Uuid::new_v4().simple().to_string(),
                    iss: None,
                    aud: None,
                };
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &claims,
                    &EncodingKey::from_secret(secret.as_bytes()),
                )
                .map_err(|error| ClientError::Config(format!("signing a service token: {error}")))
            }
        }
    }

    /// Whether a fresh token may fix a `token_expired` answer.
    pub(crate) fn can_refresh(&self) -> bool {
        !matches!(self, Self::Token(_))
    }
}
