//! Model usage: what the model proxy records for a sandbox, and what the API reports.

use super::*;
use crate::store::{UsageFilter, UsageRecord};

impl Gateway {
    /// The session whose sandbox holds `token`: a request to the model proxy over the channel of
    /// `session_id` must carry that session's current sandbox token.
    pub async fn sandbox_session(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<SessionInfo, GatewayError> {
        let principal = self.authenticate(token, Some(session_id))?;
        if principal.kind != PrincipalKind::Sandbox {
            return Err(GatewayError::Unauthenticated(
                "the model proxy takes the sandbox's token".into(),
            ));
        }
        Ok(self.access(&principal, session_id, Scope::Read).await?.info)
    }

    /// Records one model request made by `session`'s sandbox.
    pub async fn record_usage(
        &self,
        session: &SessionInfo,
        model: &str,
        usage: &TokenUsage,
    ) -> Result<(), GatewayError> {
        let record = UsageRecord {
            session_id: session.id.clone(),
            organization_id: session.organization_id.clone(),
            model: model.to_owned(),
            at: now_millis(),
            usage: usage.clone(),
        };
        Ok(self.services.usage.record_usage(&record).await?)
    }

    /// What `session` and its organisation have spent so far.
    pub async fn spent(
        &self,
        session: &SessionInfo,
    ) -> Result<(UsageReport, UsageReport), GatewayError> {
        let organization = UsageFilter {
            organization_id: session.organization_id.clone(),
            ..Default::default()
        };
        let of_session = UsageFilter {
            session_id: Some(session.id.clone()),
            ..organization.clone()
        };
        Ok((
            self.services.usage.usage(&of_session).await?,
            self.services.usage.usage(&organization).await?,
        ))
    }

    /// A session's model usage (`read`).
    pub async fn session_usage(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<UsageReport, GatewayError> {
        let record = self.access(principal, session_id, Scope::Read).await?;
        let filter = UsageFilter {
            organization_id: record.info.organization_id,
            session_id: Some(session_id.to_owned()),
            ..Default::default()
        };
        Ok(self.services.usage.usage(&filter).await?)
    }

    /// The principal's organisation's model usage between `from` (inclusive) and `to`
    /// (exclusive), in milliseconds since the epoch (`admin`).
    pub async fn organization_usage(
        &self,
        principal: &Principal,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<UsageReport, GatewayError> {
        if !has_scope(principal, Scope::Admin) || principal.kind == PrincipalKind::Sandbox {
            return Err(GatewayError::Forbidden(
                "organisation usage needs the admin scope".into(),
            ));
        }
        let filter = UsageFilter {
            organization_id: principal.organization_id.clone(),
            from,
            to,
            ..Default::default()
        };
        Ok(self.services.usage.usage(&filter).await?)
    }
}
