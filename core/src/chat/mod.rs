//! Chat layer, text side: conversation types, chat-template rendering ([`ChatTemplate`]),
//! streaming output parsing ([`OutputParser`]) and tool-call parsing ([`parse_tool_calls`]).
//!
//! The types are shaped like OpenAI's chat API so applications can reuse their code:
//! a conversation is a list of [`Message`]s, tools are JSON-schema [`Tool`]s, and the model's
//! tool calls come back as [`ToolCall`]s with JSON-object arguments.
//!
//! Typical flow of one turn:
//! 1. `template.render(&history, &tools, &RenderOptions::default())` → prompt text (starts with
//!    the BOS text; tokenize it with special-token parsing and without adding another BOS);
//! 2. generate, detokenizing with special tokens kept as text, feeding each delta to
//!    [`OutputParser::push`], then [`OutputParser::finish`];
//! 3. collect the events into an assistant [`Message`] (`thinking`, `content`, `tool_calls`) and
//!    append it to the history; run the tools and append [`Message::tool`] results.
//!
//! ```
//! use hearth::chat::*;
//!
//! let template = ChatTemplate::new(BUILTIN_LFM2_TEMPLATE, "<|startoftext|>", "<|im_end|>")?;
//! let tools = [Tool::new("get_weather", "Current weather", serde_json::json!({
//!     "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))];
//! let mut history = vec![Message::user("Weather in Paris?")];
//! let prompt = template.render(&history, &tools, &RenderOptions::default())?;
//! assert!(prompt.ends_with("<|im_start|>assistant\n"));
//!
//! let mut parser = OutputParser::new(ParserOptions::for_prompt(&prompt, !tools.is_empty()));
//! let mut events = Vec::new();
//! for delta in ["<think>Need the", " tool.</think><|tool_call_start|>[get_weather(",
//!               "city=\"Paris\")]<|tool_call_end|>"] {
//!     events.extend(parser.push(delta)); // stream Text / Thinking events to the UI here
//! }
//! events.extend(parser.finish());
//! let answer = Message::from_output(&events);
//! assert_eq!(answer.thinking.as_deref(), Some("Need the tool."));
//! assert_eq!(answer.tool_calls[0].arguments["city"], "Paris");
//!
//! history.push(answer.clone());
//! history.push(Message::tool(answer.tool_calls[0].id.clone(), "{\"temp_c\": 21}"));
//! let next_prompt = template.render(&history, &tools, &RenderOptions::default())?;
//! assert!(next_prompt.contains("<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>"));
//! # Ok::<(), hearth::Error>(())
//! ```

mod budget;
mod json;
/// Keeping control-token strings in message text from acting as control tokens.
pub mod literal;
mod output;
mod template;
mod tools;

use serde::{Deserialize, Deserializer, Serialize};

pub use output::{
    OutputEvent, OutputParser, ParserOptions, THINK_END, THINK_START, TOOL_CALL_END,
    TOOL_CALL_START,
};
pub use template::{BUILTIN_LFM2_TEMPLATE, ChatTemplate, RenderOptions, TemplateFlavor};
pub use tools::{
    MAX_NESTING, ToolParseError, format_tool_calls_json, format_tool_calls_pythonic, is_ident,
    parse_tool_calls,
};

/// Author of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
    User,
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text (for assistant messages: the answer without thinking and tool calls).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content: String,
    /// Assistant reasoning (the text between `<think>` and `</think>`).
    #[serde(
        default,
        alias = "reasoning_content",
        skip_serializing_if = "Option::is_none"
    )]
    pub thinking: Option<String>,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional name of the author (for `tool` messages: the tool name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Message {
    fn with_role(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            ..Default::default()
        }
    }

    /// A system prompt (only meaningful as the first message).
    pub fn system(content: impl Into<String>) -> Self {
        Self::with_role(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::with_role(Role::User, content)
    }

    /// An assistant message (an answer).
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with_role(Role::Assistant, content)
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::with_role(Role::Tool, content)
        }
    }

    /// Sets the reasoning text.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = Some(thinking.into());
        self
    }

    /// Sets the tool calls.
    pub fn with_tool_calls(mut self, calls: Vec<ToolCall>) -> Self {
        self.tool_calls = calls;
        self
    }

    /// The assistant message described by a generation's [`OutputEvent`]s (all events of
    /// [`OutputParser::push`] and [`OutputParser::finish`], in order): thinking pieces
    /// concatenated into `thinking` (`None` if there were none), text into `content`, calls into
    /// `tool_calls`. A [`OutputEvent::ToolCallError`]'s raw block is kept in `content`, so the
    /// history shows the model exactly what it wrote. Nothing is trimmed.
    pub fn from_output(events: &[OutputEvent]) -> Self {
        let mut m = Self::assistant("");
        for e in events {
            match e {
                OutputEvent::Thinking(t) => m.thinking.get_or_insert_with(String::new).push_str(t),
                OutputEvent::Text(t) => m.content.push_str(t),
                OutputEvent::ToolCall(c) => m.tool_calls.push(c.clone()),
                OutputEvent::ToolCallError { raw, .. } => m.content.push_str(raw),
            }
        }
        m
    }

    /// Sets the author name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A tool the model may call, described by a JSON schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON schema of the arguments object, e.g.
    /// `{"type": "object", "properties": {...}, "required": [...]}`. Key order is kept when
    /// rendered.
    #[serde(default)]
    pub parameters: serde_json::Value,
}

impl Tool {
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Tool {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }
}

/// A call of a tool by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Unique within one generation (`call_0`, `call_1`, …); echo it in [`Message::tool`].
    pub id: String,
    pub name: String,
    /// The keyword arguments as a JSON object (in the order the model wrote them).
    pub arguments: serde_json::Value,
}
