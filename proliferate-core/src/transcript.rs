//! The transcript reducer: folds a session's events, in seq order, into messages, parts and tool
//! calls. The gateway uses it for `reset` frames and the transcript route; the client and every
//! binding use the same code, so all of them render the same transcript.

use crate::protocol::v1::*;

/// Folds events into a [`Transcript`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptReducer {
    transcript: Transcript,
}

impl TranscriptReducer {
    /// An empty transcript of `session_id`.
    pub fn new(session_id: impl Into<String>) -> Self {
        Self {
            transcript: Transcript {
                session_id: session_id.into(),
                ..Default::default()
            },
        }
    }

    /// Continues from a transcript received in a `reset` frame.
    pub fn resume(transcript: Transcript) -> Self {
        Self { transcript }
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The transcript, consuming the reducer.
    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }

    /// Folds one event in. Events at or below `through_seq` are ignored, so replays are harmless.
    /// Returns whether the event changed the transcript's position.
    pub fn apply(&mut self, envelope: &EventEnvelope) -> bool {
        if envelope.seq <= self.transcript.through_seq {
            return false;
        }
        self.transcript.through_seq = envelope.seq;
        self.fold(&envelope.event);
        true
    }

    fn fold(&mut self, event: &Event) {
        let transcript = &mut self.transcript;
        match event {
            Event::UserMessage(message) => {
                let mut parts: Vec<TranscriptPart> = message
                    .images
                    .iter()
                    .map(|url| TranscriptPart::Image { url: url.clone() })
                    .collect();
                parts.push(TranscriptPart::Text(TextPart {
                    id: message.message_id.clone(),
                    text: message.content.clone(),
                    completed: true,
                }));
                transcript.queued_prompts.push(TranscriptMessage {
                    id: message.message_id.clone(),
                    role: Role::User,
                    prompt_id: Some(message.prompt_id.clone()),
                    sender: Some(message.sender.clone()),
                    parts,
                    completed: true,
                    usage: None,
                });
            }
            Event::QueuedPromptCancelled(cancelled) => {
                let prompt = Some(&cancelled.prompt_id);
                transcript
                    .queued_prompts
                    .retain(|queued| queued.prompt_id.as_ref() != prompt);
            }
            Event::TurnStarted(started) => {
                let prompt = Some(&started.prompt_id);
                if let Some(index) = transcript
                    .queued_prompts
                    .iter()
                    .position(|queued| queued.prompt_id.as_ref() == prompt)
                {
                    let message = transcript.queued_prompts.remove(index);
                    transcript.messages.push(message);
                }
                transcript.running_prompt_id = Some(started.prompt_id.clone());
            }
            Event::TurnCompleted(ended) => self.end_turn(&ended.prompt_id, false),
            Event::TurnCancelled(cancelled) => self.end_turn(&cancelled.prompt_id, true),
            Event::AssistantMessageStarted(started) => {
                self.assistant_message(&started.message_id);
            }
            Event::AssistantMessageCompleted(completed) => {
                let message = self.assistant_message(&completed.message_id);
                message.completed = true;
                message.usage.clone_from(&completed.usage);
            }
            Event::TextDelta(delta) => {
                self.append_text(&delta.message_id, &delta.part_id, &delta.delta, false)
            }
            Event::ReasoningDelta(delta) => {
                self.append_text(&delta.message_id, &delta.part_id, &delta.delta, true)
            }
            Event::TextCompleted(done) => {
                self.complete_text(&done.message_id, &done.part_id, &done.text, false)
            }
            Event::ReasoningCompleted(done) => {
                self.complete_text(&done.message_id, &done.part_id, &done.text, true)
            }
            Event::ToolStarted(started) => {
                if let Some(call) =
                    self.tool_call(&started.message_id, &started.part_id, &started.call_id)
                {
                    call.tool.clone_from(&started.tool);
                    call.input = started.input.clone();
                }
            }
            Event::ToolUpdated(updated) => {
                if let Some(call) =
                    self.tool_call(&updated.message_id, &updated.part_id, &updated.call_id)
                {
                    call.tool.clone_from(&updated.tool);
                    if let Some(input) = &updated.input {
                        call.input = input.clone();
                    }
                    if updated.title.is_some() {
                        call.title.clone_from(&updated.title);
                    }
                    if updated.output.is_some() {
                        call.output.clone_from(&updated.output);
                    }
                }
            }
            Event::ToolCompleted(completed) => {
                if let Some(call) = self.tool_call(
                    &completed.message_id,
                    &completed.part_id,
                    &completed.call_id,
                ) {
                    call.tool.clone_from(&completed.tool);
                    call.input = completed.input.clone();
                    call.status = ToolStatus::Completed;
                    call.output = Some(completed.output.clone());
                    if completed.title.is_some() {
                        call.title.clone_from(&completed.title);
                    }
                }
            }
            Event::ToolFailed(failed) => {
                if let Some(call) =
                    self.tool_call(&failed.message_id, &failed.part_id, &failed.call_id)
                {
                    call.tool.clone_from(&failed.tool);
                    call.input = failed.input.clone();
                    call.status = ToolStatus::Failed;
                    call.error = Some(failed.error.clone());
                }
            }
            Event::PermissionRequested(requested) => {
                transcript.pending_permissions.push(requested.clone());
            }
            Event::PermissionResolved(resolved) => transcript
                .pending_permissions
                .retain(|pending| pending.permission_id != resolved.permission_id),
            Event::TodoUpdated(todos) => transcript.todos.clone_from(&todos.todos),
            _ => {}
        }
    }

    fn end_turn(&mut self, prompt_id: &str, cancelled: bool) {
        let transcript = &mut self.transcript;
        if transcript.running_prompt_id.as_deref() == Some(prompt_id) {
            transcript.running_prompt_id = None;
        }
        let of_turn = transcript
            .messages
            .iter_mut()
            .rev()
            .take_while(|message| message.role == Role::Assistant)
            .filter(|message| message.prompt_id.as_deref() == Some(prompt_id));
        for message in of_turn {
            message.completed = true;
            for part in &mut message.parts {
                match part {
                    TranscriptPart::Tool(call)
                        if cancelled && call.status == ToolStatus::Running =>
                    {
                        call.status = ToolStatus::Cancelled;
                    }
                    TranscriptPart::Text(text) | TranscriptPart::Reasoning(text) => {
                        text.completed = true;
                    }
                    _ => {}
                }
            }
        }
        if cancelled {
            transcript.pending_permissions.clear();
        }
    }

    fn assistant_message(&mut self, message_id: &str) -> &mut TranscriptMessage {
        let transcript = &mut self.transcript;
        let index = match transcript
            .messages
            .iter()
            .rposition(|message| message.id == message_id)
        {
            Some(index) => index,
            None => {
                transcript.messages.push(TranscriptMessage {
                    id: message_id.to_owned(),
                    role: Role::Assistant,
                    prompt_id: transcript.running_prompt_id.clone(),
                    ..Default::default()
                });
                transcript.messages.len() - 1
            }
        };
        &mut transcript.messages[index]
    }

    fn part(
        &mut self,
        message_id: &str,
        part_id: &str,
        new: TranscriptPart,
    ) -> &mut TranscriptPart {
        let message = self.assistant_message(message_id);
        let index = match message
            .parts
            .iter()
            .position(|part| part_id_of(part) == part_id)
        {
            Some(index) => index,
            None => {
                message.parts.push(new);
                message.parts.len() - 1
            }
        };
        &mut message.parts[index]
    }

    /// The text or reasoning part `delta` names, created if new; `None` if that id is a tool.
    fn text_part(
        &mut self,
        message_id: &str,
        part_id: &str,
        reasoning: bool,
    ) -> Option<&mut TextPart> {
        let empty = TextPart {
            id: part_id.to_owned(),
            ..Default::default()
        };
        let new = if reasoning {
            TranscriptPart::Reasoning(empty)
        } else {
            TranscriptPart::Text(empty)
        };
        match self.part(message_id, part_id, new) {
            TranscriptPart::Text(text) | TranscriptPart::Reasoning(text) => Some(text),
            _ => None,
        }
    }

    fn append_text(&mut self, message_id: &str, part_id: &str, delta: &str, reasoning: bool) {
        if let Some(part) = self.text_part(message_id, part_id, reasoning) {
            part.text.push_str(delta);
        }
    }

    fn complete_text(&mut self, message_id: &str, part_id: &str, text: &str, reasoning: bool) {
        if let Some(part) = self.text_part(message_id, part_id, reasoning) {
            text.clone_into(&mut part.text);
            part.completed = true;
        }
    }

    /// The tool call in part `part_id`, created if new; `None` if that id is a text part.
    fn tool_call(
        &mut self,
        message_id: &str,
        part_id: &str,
        call_id: &str,
    ) -> Option<&mut ToolCall> {
        let new = TranscriptPart::Tool(ToolCall {
            id: part_id.to_owned(),
            call_id: call_id.to_owned(),
            input: serde_json::Value::Object(Default::default()),
            ..Default::default()
        });
        match self.part(message_id, part_id, new) {
            TranscriptPart::Tool(call) => Some(call),
            _ => None,
        }
    }
}

fn part_id_of(part: &TranscriptPart) -> &str {
    match part {
        TranscriptPart::Text(text) | TranscriptPart::Reasoning(text) => &text.id,
        TranscriptPart::Tool(call) => &call.id,
        TranscriptPart::Image { url } => url,
    }
}
