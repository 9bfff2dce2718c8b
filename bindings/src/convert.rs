//! The SDK's plain data (records and enums) and their conversions to and from the core's types.
//!
//! Integer options are signed where Kotlin callers write literals (`maxTokens = 256`,
//! `seed = 7L`: Kotlin does not convert an `Int` literal to `UInt`); negative values are refused
//! as `InvalidArgument` here rather than wrapped.

use hearth::{BackendKind, Event, LoadPhase, StopReason as CoreStop};

use crate::HearthError;

/// Which compute backend a model runs on. `Auto` = the GPU if it passes its self-test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Backend {
    Auto,
    Gpu,
    Cpu,
}

/// Options of [`crate::HearthModel`]'s load. `backend: None` is `Auto`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ModelOptions {
    #[uniffi(default = None)]
    pub backend: Option<Backend>,
    /// The context length the memory-fit check plans for.
    #[uniffi(default = 4096)]
    pub context_length: i32,
    /// Bytes the engine may use; `None` = the memory the OS reports available.
    #[uniffi(default = None)]
    pub memory_budget: Option<i64>,
    /// A folder Hearth may keep small records in across launches (the app's caches folder):
    /// a GPU that failed its self-test or faulted during a reply is remembered there, so the
    /// next `Auto` load picks the CPU at once instead of testing it again. `None`: nothing is
    /// remembered. [`crate::forget_gpu_failures`] clears it.
    #[uniffi(default = None)]
    pub cache_dir: Option<String>,
}

/// A phase of a model load and the fraction of the whole load done (0 to 1).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LoadProgress {
    /// `reading`, `tokenizer`, `self_test`, `weights`, `warm_up` or `ready`.
    pub phase: String,
    pub fraction: f32,
}

/// A tool the model may call: its name, what it does, and a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ToolSpec {
    pub name: String,
    #[uniffi(default = "")]
    pub description: String,
    /// JSON schema of the arguments object.
    #[uniffi(default = "{}")]
    pub parameters_json: String,
}

/// Options fixed for the life of a session.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SessionOptions {
    /// The system prompt.
    #[uniffi(default = None)]
    pub instructions: Option<String>,
    #[uniffi(default)]
    pub tools: Vec<ToolSpec>,
    #[uniffi(default = 4096)]
    pub context_length: i32,
    /// Tokens per prefill chunk (cancel is checked between chunks).
    #[uniffi(default = 64)]
    pub batch_size: i32,
    /// Drop the oldest messages when the context is full instead of failing the turn.
    #[uniffi(default = false)]
    pub drop_oldest_on_overflow: bool,
}

/// Options of one turn.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GenerateOptions {
    #[uniffi(default = 0.3)]
    pub temperature: f32,
    #[uniffi(default = 512)]
    pub max_tokens: i32,
    #[uniffi(default = 0)]
    pub seed: i64,
    /// 0 = off.
    #[uniffi(default = 0)]
    pub top_k: i32,
    #[uniffi(default = 1.0)]
    pub top_p: f32,
    #[uniffi(default = 0.15)]
    pub min_p: f32,
    #[uniffi(default = 1.05)]
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every recent token (0 = off).
    #[uniffi(default = 0.0)]
    pub presence_penalty: f32,
    /// Subtracted per occurrence of a recent token (0 = off).
    #[uniffi(default = 0.0)]
    pub frequency_penalty: f32,
    /// How many recent tokens (prompt included) the three penalties look at.
    #[uniffi(default = 64)]
    pub penalty_window: i32,
    /// Added to the logits of these tokens (`HearthModel.tokenize`) before sampling;
    /// `-inf` bans a token.
    #[uniffi(default)]
    pub logit_bias: Vec<LogitBias>,
    #[uniffi(default)]
    pub stop: Vec<String>,
    /// Stream the model's thinking as `Thinking` events.
    #[uniffi(default = true)]
    pub show_thinking: bool,
    /// Constrain the answer to JSON valid under this schema.
    #[uniffi(default = None)]
    pub json_schema: Option<String>,
    /// Thinking tokens allowed before the model is made to answer (`</think>` forced);
    /// `None` = unlimited.
    #[uniffi(default = None)]
    pub thinking_budget: Option<i32>,
}

/// A bias added to one token's logit.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LogitBias {
    pub token: i32,
    pub bias: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A call of a tool by the model; `arguments_json` is a JSON object.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments_json: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[uniffi(default = None)]
    pub thinking: Option<String>,
    #[uniffi(default)]
    pub tool_calls: Vec<ToolCall>,
    /// For tool results: the id of the call answered.
    #[uniffi(default = None)]
    pub tool_call_id: Option<String>,
    /// For tool results: the tool's name.
    #[uniffi(default = None)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopReason {
    EndOfTurn,
    MaxTokens,
    StopString,
    ContextFull,
    Cancelled,
}

/// Figures of one turn.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TurnStats {
    pub stop_reason: StopReason,
    pub prompt_tokens: u32,
    /// Prompt tokens whose cache was reused from the previous turn.
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    pub time_to_first_token_ms: f64,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
}

/// What a turn streams. `Done` is added by the platform wrappers from `on_finish`.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum ChatEvent {
    Thinking {
        text: String,
    },
    Text {
        text: String,
    },
    ToolCall {
        call: ToolCall,
    },
    /// The model wrote something that looked like a tool call but did not parse.
    ToolCallError {
        raw: String,
        reason: String,
    },
    Done {
        stats: TurnStats,
    },
}

fn non_negative(v: i64, what: &str) -> Result<usize, HearthError> {
    usize::try_from(v).map_err(|_| HearthError::InvalidArgument {
        message: format!("{what} must not be negative (got {v})"),
    })
}

fn json(s: &str, what: &str) -> Result<serde_json::Value, HearthError> {
    serde_json::from_str(s).map_err(|e| HearthError::InvalidArgument {
        message: format!("{what} is not valid JSON: {e}"),
    })
}

impl ModelOptions {
    pub(crate) fn to_core(&self) -> Result<hearth::EngineOptions, HearthError> {
        Ok(hearth::EngineOptions {
            backend: match self.backend.unwrap_or(Backend::Auto) {
                Backend::Auto => BackendKind::Auto,
                Backend::Gpu => BackendKind::Gpu,
                Backend::Cpu => BackendKind::Cpu,
            },
            context_length: non_negative(self.context_length.into(), "contextLength")?,
            memory_budget: match self.memory_budget {
                Some(b) => Some(non_negative(b, "memoryBudget")? as u64),
                None => None,
            },
            gpu_failure_dir: self.cache_dir.as_ref().map(std::path::PathBuf::from),
            accept_software_gpu: false,
        })
    }
}

impl From<hearth::LoadProgress> for LoadProgress {
    fn from(p: hearth::LoadProgress) -> Self {
        let phase = match p.phase {
            LoadPhase::Reading => "reading",
            LoadPhase::Tokenizer => "tokenizer",
            LoadPhase::SelfTest => "self_test",
            LoadPhase::Weights => "weights",
            LoadPhase::WarmUp => "warm_up",
            LoadPhase::Ready => "ready",
            _ => "loading",
        };
        LoadProgress {
            phase: phase.into(),
            fraction: p.fraction,
        }
    }
}

impl SessionOptions {
    pub(crate) fn to_core(&self) -> Result<hearth::SessionOptions, HearthError> {
        let tools = self
            .tools
            .iter()
            .map(|t| {
                let params = json(&t.parameters_json, "a tool's parametersJson")?;
                Ok(hearth::Tool::new(&t.name, &t.description, params))
            })
            .collect::<Result<_, HearthError>>()?;
        Ok(hearth::SessionOptions {
            context_length: non_negative(self.context_length.into(), "contextLength")?,
            batch_size: non_negative(self.batch_size.into(), "batchSize")?,
            system_prompt: self.instructions.clone(),
            tools,
            overflow: match self.drop_oldest_on_overflow {
                true => hearth::OverflowPolicy::DropOldest,
                false => hearth::OverflowPolicy::Error,
            },
            keep_past_thinking: false,
        })
    }
}

impl GenerateOptions {
    pub(crate) fn to_core(&self) -> Result<hearth::GenerateOptions, HearthError> {
        let sampling = hearth::SamplingOptions {
            temperature: self.temperature,
            top_k: non_negative(self.top_k.into(), "topK")?,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            penalty_window: non_negative(self.penalty_window.into(), "penaltyWindow")?,
            logit_bias: self
                .logit_bias
                .iter()
                .map(|b| {
                    Ok((
                        non_negative(b.token.into(), "a logit bias token")? as u32,
                        b.bias,
                    ))
                })
                .collect::<Result<_, HearthError>>()?,
            // The seed's bits, so that every Long is a distinct seed.
            seed: self.seed as u64,
        };
        Ok(hearth::GenerateOptions {
            sampling,
            max_tokens: non_negative(self.max_tokens.into(), "maxTokens")?,
            stop: self.stop.clone(),
            show_thinking: self.show_thinking,
            thinking_budget: match self.thinking_budget {
                Some(b) => Some(non_negative(b.into(), "thinkingBudget")?),
                None => None,
            },
            json_schema: match &self.json_schema {
                Some(s) => Some(json(s, "jsonSchema")?),
                None => None,
            },
        })
    }
}

impl From<&hearth::ToolCall> for ToolCall {
    fn from(c: &hearth::ToolCall) -> Self {
        ToolCall {
            id: c.id.clone(),
            name: c.name.clone(),
            arguments_json: c.arguments.to_string(),
        }
    }
}

impl From<&hearth::Message> for Message {
    fn from(m: &hearth::Message) -> Self {
        Message {
            role: match m.role {
                hearth::Role::System => Role::System,
                hearth::Role::User => Role::User,
                hearth::Role::Assistant => Role::Assistant,
                hearth::Role::Tool => Role::Tool,
            },
            content: m.content.clone(),
            thinking: m.thinking.clone(),
            tool_calls: m.tool_calls.iter().map(ToolCall::from).collect(),
            tool_call_id: m.tool_call_id.clone(),
            name: m.name.clone(),
        }
    }
}

impl Message {
    pub(crate) fn to_core(&self) -> Result<hearth::Message, HearthError> {
        let calls = self.tool_calls.iter().map(|c| {
            let arguments = json(&c.arguments_json, "a tool call's argumentsJson")?;
            Ok(hearth::ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments,
            })
        });
        Ok(hearth::Message {
            role: match self.role {
                Role::System => hearth::Role::System,
                Role::User => hearth::Role::User,
                Role::Assistant => hearth::Role::Assistant,
                Role::Tool => hearth::Role::Tool,
            },
            content: self.content.clone(),
            thinking: self.thinking.clone(),
            tool_calls: calls.collect::<Result<_, HearthError>>()?,
            tool_call_id: self.tool_call_id.clone(),
            name: self.name.clone(),
        })
    }
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl From<&hearth::TurnStats> for TurnStats {
    fn from(s: &hearth::TurnStats) -> Self {
        TurnStats {
            stop_reason: match s.stop_reason {
                CoreStop::EndOfTurn => StopReason::EndOfTurn,
                CoreStop::MaxTokens => StopReason::MaxTokens,
                CoreStop::StopString => StopReason::StopString,
                CoreStop::ContextFull => StopReason::ContextFull,
                CoreStop::Cancelled => StopReason::Cancelled,
            },
            prompt_tokens: to_u32(s.prompt_tokens),
            cached_tokens: to_u32(s.cached_tokens),
            generated_tokens: to_u32(s.generated_tokens),
            time_to_first_token_ms: s.time_to_first_token.as_secs_f64() * 1e3,
            prefill_tokens_per_second: s.prefill_tok_s,
            decode_tokens_per_second: s.decode_tok_s,
        }
    }
}

impl From<Event> for ChatEvent {
    fn from(e: Event) -> Self {
        match e {
            Event::Thinking(text) => ChatEvent::Thinking { text },
            Event::Text(text) => ChatEvent::Text { text },
            Event::ToolCall(c) => ChatEvent::ToolCall { call: (&c).into() },
            Event::ToolCallError { raw, reason } => ChatEvent::ToolCallError { raw, reason },
            Event::Done(s) => ChatEvent::Done { stats: (&s).into() },
        }
    }
}
