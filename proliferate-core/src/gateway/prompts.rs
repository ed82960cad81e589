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
        // §6.1: "any string of 1 to 128 characters", counted as characters, not bytes.
        if prompt_id.is_empty() || prompt_id.chars().count() > MAX_PROMPT_ID {
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
        if let Some(problem) = images.iter().find_map(|image| image_problem(image)) {
            return Err(GatewayError::BadRequest(problem));
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
        self.services
            .ask(session_id, |reply| Command::Prompt(prompt, reply))
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
        self.services
            .ask(session_id, |reply| Command::Cancel(by, reply))
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
        self.services
            .ask(session_id, |reply| {
                Command::CancelQueued(prompt_id, by, reply)
            })
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
        self.services
            .ask(session_id, |reply| {
                Command::ReplyPermission(permission_id, decision, by, reply)
            })
            .await
    }
}

/// Why an attached image is malformed, if it is: it must be a `data:image/<type>;base64,<data>`
/// URI whose data is base64, or an `http(s)` URL with a host.
fn image_problem(image: &str) -> Option<String> {
    use base64::Engine;
    let start: String = image.chars().take(24).collect();
    if let Some(rest) = image.strip_prefix("data:") {
        let (media, data) = rest.split_once(',').unwrap_or((rest, ""));
        let subtype = media
            .strip_suffix(";base64")
            .and_then(|media| media.strip_prefix("image/"));
        let valid = subtype.is_some_and(|subtype| {
            !subtype.is_empty()
                && subtype
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte))
        }) && !data.is_empty()
            && base64::engine::general_purpose::STANDARD
                .decode(data)
                .is_ok();
        return (!valid).then(|| {
            format!(
                "image {start:?}... is not a data:image/<type>;base64,<data> URI with base64 data"
            )
        });
    }
    let host = image
        .strip_prefix("https://")
        .or_else(|| image.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => None,
        _ => Some(format!(
            "images must be data:image/ URIs or http(s) URLs, not {start:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::image_problem;

    #[test]
    fn only_well_formed_images_are_admitted() {
        for good in [
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            "https://example.com/a.png",
            "http://example.com",
        ] {
            assert_eq!(image_problem(good), None, "{good}");
        }
        for bad in [
            "data:image/png;base64,@@not base64@@",
            "data:image/png;base64,",
            "data:image/png,rawbytes",
            "data:text/plain;base64,aGk=",
            "data:image/;base64,aGk=",
            "data:image/png;base64",
            "https://",
            "ftp://example.com/a.png",
            "file:///etc/passwd",
        ] {
            assert!(image_problem(bad).is_some(), "{bad}");
        }
    }
}
