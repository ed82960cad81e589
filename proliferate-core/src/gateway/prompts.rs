//! Prompts, cancels and permission answers.

use super::*;

impl Gateway {
    pub(super) fn prompt_record(
        &self,
        principal: &Principal,
        session_id: &str,
        prompt_id: Option<String>,
        content: String,
        images: Vec<String>,
        source: &str,
    ) -> Result<PromptRecord, GatewayError> {
        let prompt_id =
            prompt_id.unwrap_or_else(|| format!("prm_{}", uuid::Uuid::now_v7().simple()));
        if prompt_id.is_empty() || prompt_id.len() > MAX_PROMPT_ID {
            return Err(GatewayError::BadRequest(format!(
                "prompt_id must have 1 to {MAX_PROMPT_ID} characters"
            )));
        }
        if content.trim().is_empty() {
            return Err(GatewayError::BadRequest(
                "prompt content must not be empty".into(),
            ));
        }
        let size = content.len() + images.iter().map(String::len).sum::<usize>();
        if size > self.services.config.max_prompt_bytes {
            return Err(GatewayError::PayloadTooLarge(format!(
                "the prompt has {size} bytes; the limit is {}",
                self.services.config.max_prompt_bytes
            )));
        }
        if let Some(image) = images.iter().find(|image| {
            !(image.starts_with("data:image/")
                || image.starts_with("https://")
                || image.starts_with("http://"))
        }) {
            let start: String = image.chars().take(24).collect();
            return Err(GatewayError::BadRequest(format!(
                "images must be data:image/ URIs or http(s) URLs, not {start:?}"
            )));
        }
        Ok(PromptRecord {
            session_id: session_id.to_owned(),
            admission: PromptAdmission {
                prompt_id: prompt_id.clone(),
                ..Default::default()
            },
            prompt_id,
            state: PromptState::Queued,
            content,
            images,
            sender: sender(principal, source),
        })
    }

    /// Admits a prompt: idempotent by `prompt_id`, queued behind a running turn.
    pub async fn send_prompt(
        &self,
        principal: &Principal,
        session_id: &str,
        request: SendMessageRequest,
        source: &str,
    ) -> Result<PromptAdmission, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let source = request.source.as_deref().unwrap_or(source);
        let prompt = self.prompt_record(
            principal,
            session_id,
            request.prompt_id,
            request.content,
            request.images,
            source,
        )?;
        self.hub(session_id)
            .await?
            .ask(|reply| Command::Prompt(prompt, reply))
            .await
    }

    /// Cancels the running turn; false when none runs.
    pub async fn cancel(
        &self,
        principal: &Principal,
        session_id: &str,
        source: &str,
    ) -> Result<bool, GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        self.hub(session_id)
            .await?
            .ask(|reply| Command::Cancel(by, reply))
            .await
    }

    /// Withdraws a queued prompt.
    pub async fn cancel_queued(
        &self,
        principal: &Principal,
        session_id: &str,
        prompt_id: &str,
        source: &str,
    ) -> Result<(), GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        let prompt_id = prompt_id.to_owned();
        self.hub(session_id)
            .await?
            .ask(|reply| Command::CancelQueued(prompt_id, by, reply))
            .await
    }

    /// Answers a permission request; the first valid answer wins.
    pub async fn reply_permission(
        &self,
        principal: &Principal,
        session_id: &str,
        permission_id: &str,
        decision: PermissionDecision,
        source: &str,
    ) -> Result<(), GatewayError> {
        self.access(principal, session_id, Scope::Write).await?;
        let by = sender(principal, source);
        let permission_id = permission_id.to_owned();
        self.hub(session_id)
            .await?
            .ask(|reply| Command::ReplyPermission(permission_id, decision, by, reply))
            .await
    }
}
