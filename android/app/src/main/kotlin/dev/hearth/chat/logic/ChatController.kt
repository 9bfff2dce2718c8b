package dev.hearth.chat.logic

import dev.hearth.ChatEvent
import dev.hearth.ChatSession
import dev.hearth.GenerateOptions
import dev.hearth.HearthException
import dev.hearth.Message
import dev.hearth.StopReason
import dev.hearth.TurnStats
import dev.hearth.streamEdit
import dev.hearth.streamRegenerate
import dev.hearth.streamResponse
import dev.hearth.toolResult
import dev.hearth.user
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

/** Where a conversation's turns come from: a [ChatSession] in the app ([SessionTurns]). */
interface TurnSource {
    fun send(message: Message, options: GenerateOptions): Flow<ChatEvent>
    fun regenerate(options: GenerateOptions): Flow<ChatEvent>

    /** Replaces the last user message with [text] and answers it (the SDK reuses the cache up to it). */
    fun edit(text: String, options: GenerateOptions): Flow<ChatEvent>

    /** Adds messages to the history without answering them. */
    fun append(messages: List<Message>)
}

/** The SDK session as a [TurnSource]. */
class SessionTurns(val session: ChatSession) : TurnSource {
    override fun send(message: Message, options: GenerateOptions) = session.streamResponse(message, options)
    override fun regenerate(options: GenerateOptions) = session.streamRegenerate(options)
    override fun edit(text: String, options: GenerateOptions) = session.streamEdit(text, options)
    override fun append(messages: List<Message>) = session.appendMessages(messages)
}

enum class Author { USER, ASSISTANT }

/** A tool call the model made, and what the app's tool answered. */
data class ToolCard(
    val callId: String,
    val name: String,
    val argumentsJson: String,
    val resultJson: String? = null,
    val error: String? = null,
)

/** One answer's figures, for the stats line under it. */
data class MessageStats(
    val promptTokens: Int,
    val cachedTokens: Int,
    val generatedTokens: Int,
    val timeToFirstTokenMs: Double,
    val prefillTokensPerSecond: Double,
    val decodeTokensPerSecond: Double,
    val stopReason: StopReason,
    val backend: String?,
) {
    /** e.g. "TTFT 180 ms · prefill 410 tok/s · decode 38 tok/s · 120 cached · GPU". */
    fun summary(): String = buildString {
        append("TTFT ${timeToFirstTokenMs.toInt()} ms · prefill ${prefillTokensPerSecond.toInt()} tok/s")
        append(" · decode ${decodeTokensPerSecond.toInt()} tok/s · $cachedTokens/$promptTokens cached")
        backend?.let { append(" · $it") }
        if (stopReason == StopReason.MAX_TOKENS) append(" · cut at the token limit")
        if (stopReason == StopReason.CONTEXT_FULL) append(" · the context is full")
    }

    companion object {
        fun of(s: TurnStats, backend: String?) = MessageStats(
            s.promptTokens.toInt(), s.cachedTokens.toInt(), s.generatedTokens.toInt(),
            s.timeToFirstTokenMs, s.prefillTokensPerSecond, s.decodeTokensPerSecond, s.stopReason, backend,
        )
    }
}

/** A message as the chat screen shows it (tool results live in their [ToolCard]). */
data class ChatMessage(
    val id: Long,
    val author: Author,
    val text: String = "",
    val thinking: String = "",
    /** Thinking tokens: the SDK delivers one event batch per token, adjacent text merged. */
    val thinkingTokens: Int = 0,
    val toolCards: List<ToolCard> = emptyList(),
    val stats: MessageStats? = null,
    val streaming: Boolean = false,
    /** Text the model meant as a tool call that did not parse. */
    val malformedToolCall: String? = null,
)

enum class ThermalLevel { NOMINAL, FAIR, SERIOUS, CRITICAL }

data class ChatUiState(
    val messages: List<ChatMessage> = emptyList(),
    /** The input field. A stopped turn puts its text back here. */
    val draft: String = "",
    val generating: Boolean = false,
    /** A turn was interrupted (backgrounded, too hot, memory) and [ChatController.resume] continues it. */
    val canResume: Boolean = false,
    /** A plain-language error with the next step. */
    val error: String? = null,
    /** A visible notice (e.g. "Paused: the phone is hot"). */
    val notice: String? = null,
    val thermal: ThermalLevel = ThermalLevel.NOMINAL,
) {
    val canRegenerate get() = !generating && messages.lastOrNull()?.author == Author.ASSISTANT
    val canEdit get() = !generating && messages.any { it.author == Author.USER }
}

/**
 * SDK events → immutable UI state. One turn at a time: [send], [regenerate], [editLast]; [stop]
 * cancels (the SDK rolls the turn back exactly; the UI goes back to the state before it and the
 * draft returns to the input). Tool calls of the demo tools are executed locally and their results
 * sent back until the model answers without one (at most [maxToolRounds] rounds per message).
 */
class ChatController(
    private val turns: TurnSource,
    private val scope: CoroutineScope,
    private val settings: () -> ChatSettings,
    initial: List<ChatMessage> = emptyList(),
    private val backend: String? = null,
    private val tools: DemoTools = DemoTools(),
    /** The seed of each turn (random in the app; fixed in tests for reproducible text). */
    private val seeds: () -> Long = { kotlin.random.Random.nextLong() },
    /** Called with the messages after each completed turn (the app persists them). */
    private val onTurnFinished: (List<ChatMessage>) -> Unit = {},
    private val maxToolRounds: Int = 4,
) {
    private val _state = MutableStateFlow(ChatUiState(messages = initial))
    val state: StateFlow<ChatUiState> = _state.asStateFlow()

    private var job: Job? = null
    private var nextId = (initial.maxOfOrNull { it.id } ?: 0L) + 1
    private var stopNotice: String? = null

    /** What [resume] continues: a tool result whose answer was interrupted, or a user message. */
    private var resumeWith: (() -> Unit)? = null

    fun setDraft(text: String) = _state.update { it.copy(draft = text) }

    fun dismissError() = _state.update { it.copy(error = null, notice = null) }

    /** Sends [text] (default: the draft). Returns false if a turn is running or the text is blank. */
    fun send(text: String = state.value.draft): Boolean {
        val s = state.value
        if (s.generating || text.isBlank()) return false
        val user = ChatMessage(id(), Author.USER, text)
        start(before = s.messages, shown = s.messages + user, draftOnStop = text) { o ->
            turns.send(Message.user(text), o)
        }
        return true
    }

    /** A new answer to the last message, replacing the last answer. */
    fun regenerate(): Boolean {
        val s = state.value
        if (!s.canRegenerate) return false
        start(before = s.messages, shown = s.messages.dropLast(1), draftOnStop = null) { o -> turns.regenerate(o) }
        return true
    }

    /** Replaces the last user message with [text] and answers it; later messages are dropped. */
    fun editLast(text: String): Boolean {
        val s = state.value
        val i = s.messages.indexOfLast { it.author == Author.USER }
        if (s.generating || i < 0 || text.isBlank()) return false
        val shown = s.messages.take(i) + ChatMessage(id(), Author.USER, text)
        start(before = s.messages, shown = shown, draftOnStop = text) { o -> turns.edit(text, o) }
        return true
    }

    /** Cancels the running turn; the session and the screen go back to before it. */
    fun stop() = interrupt(null)

    /**
     * Stops the running turn for a reason outside the chat (the app went to the background, the
     * device is too hot, memory is short) with a visible [notice]; [resume] continues.
     */
    fun interrupt(notice: String?) {
        val j = job ?: return
        if (!j.isActive) return
        stopNotice = notice
        j.cancel()
    }

    /** Continues an interrupted turn. */
    fun resume(): Boolean {
        val again = resumeWith ?: return false
        if (state.value.generating) return false
        resumeWith = null
        again()
        return true
    }

    /** The device's thermal state: SERIOUS paces generation, CRITICAL pauses it (resumable). */
    fun setThermal(level: ThermalLevel) {
        _state.update { it.copy(thermal = level) }
        if (level == ThermalLevel.CRITICAL) interrupt("Paused: the device is too hot. Resume when it has cooled down.")
    }

    /** Waits for the running turn (and its tool rounds) to end. */
    suspend fun awaitIdle() {
        job?.join()
    }

    private fun id() = nextId++

    private fun start(
        before: List<ChatMessage>,
        shown: List<ChatMessage>,
        draftOnStop: String?,
        first: (GenerateOptions) -> Flow<ChatEvent>,
    ) {
        stopNotice = null
        resumeWith = null
        val answer = ChatMessage(id(), Author.ASSISTANT, streaming = true)
        _state.update {
            it.copy(
                messages = shown + answer, generating = true, canResume = false, error = null, notice = null,
                draft = if (draftOnStop != null) "" else it.draft,
            )
        }
        job = scope.launch { runTurn(before, draftOnStop, answer.id, first) }
    }

    private suspend fun runTurn(
        before: List<ChatMessage>,
        draftOnStop: String?,
        firstAnswerId: Long,
        first: (GenerateOptions) -> Flow<ChatEvent>,
    ) {
        var rollbackTo = before
        var restoreDraft = draftOnStop
        var answerId = firstAnswerId
        var flow = first(settings().generateOptions(seeds()))
        var rounds = 0
        // Set while a tool result is being answered: what resume() sends again.
        var continuation: Message? = null
        while (true) {
            try {
                flow.collect { e -> applyEvent(answerId, e) }
            } catch (e: CancellationException) {
                val notice = stopNotice
                val again = continuation
                val draft = restoreDraft
                resumeWith = when {
                    notice == null -> null
                    again != null -> fun() { continueWith(again) }
                    draft != null -> fun() { send(draft) }
                    else -> null
                }
                _state.update {
                    it.copy(
                        messages = rollbackTo, generating = false, notice = notice, canResume = resumeWith != null,
                        draft = restoreDraft ?: it.draft,
                    )
                }
                throw e
            } catch (e: HearthException) {
                _state.update {
                    it.copy(messages = rollbackTo, generating = false, error = describe(e), draft = restoreDraft ?: it.draft)
                }
                return
            }
            val calls = finish(answerId)
            if (calls.isEmpty() || rounds >= maxToolRounds) break
            rounds++
            // Execute the calls locally and show their results, then answer them.
            val results = calls.map { c -> c to tools.execute(dev.hearth.ToolCall(c.callId, c.name, c.argumentsJson)) }
            updateMessage(answerId) { m ->
                m.copy(
                    toolCards = m.toolCards.map { card ->
                        val r = results.firstOrNull { it.first.callId == card.callId }?.second ?: return@map card
                        card.copy(resultJson = r.resultJson, error = r.error)
                    },
                )
            }
            val messages = results.map { (c, r) -> Message.toolResult(c.name, r.resultJson, callId = c.callId) }
            if (messages.size > 1) turns.append(messages.dropLast(1))
            val last = messages.last()
            continuation = last
            rollbackTo = state.value.messages
            restoreDraft = null
            val next = ChatMessage(id(), Author.ASSISTANT, streaming = true)
            answerId = next.id
            _state.update { it.copy(messages = it.messages + next) }
            flow = turns.send(last, settings().generateOptions(seeds()))
        }
        _state.update { it.copy(generating = false) }
        onTurnFinished(state.value.messages)
    }

    /** Answers a tool result again after an interruption. */
    private fun continueWith(result: Message) {
        val s = state.value
        start(before = s.messages, shown = s.messages, draftOnStop = null) { o -> turns.send(result, o) }
    }

    private suspend fun applyEvent(id: Long, e: ChatEvent) {
        when (e) {
            is ChatEvent.Text -> updateMessage(id) { it.copy(text = it.text + e.text) }
            is ChatEvent.Thinking -> updateMessage(id) { it.copy(thinking = it.thinking + e.text, thinkingTokens = it.thinkingTokens + 1) }
            is ChatEvent.ToolCall -> updateMessage(id) {
                it.copy(toolCards = it.toolCards + ToolCard(e.call.id, e.call.name, e.call.argumentsJson))
            }
            is ChatEvent.ToolCallError -> updateMessage(id) { it.copy(malformedToolCall = e.raw, text = it.text + e.raw) }
            is ChatEvent.Done -> updateMessage(id) { it.copy(stats = MessageStats.of(e.stats, backend)) }
        }
        // Serious heat: pace the stream; the SDK's flow blocks the engine thread when the
        // collector is slow, so generation itself slows down.
        if (state.value.thermal == ThermalLevel.SERIOUS) delay(SERIOUS_PACING_MS)
    }

    /** Ends the streaming of message [id]; returns its tool calls. */
    private fun finish(id: Long): List<ToolCard> {
        updateMessage(id) { it.copy(streaming = false) }
        return state.value.messages.firstOrNull { it.id == id }?.toolCards.orEmpty()
    }

    private fun updateMessage(id: Long, change: (ChatMessage) -> ChatMessage) = _state.update { s ->
        s.copy(messages = s.messages.map { if (it.id == id) change(it) else it })
    }

    companion object {
        const val SERIOUS_PACING_MS = 60L
    }
}

/** An SDK error in plain language, with the next step. */
fun describe(e: HearthException): String = when (e) {
    is HearthException.ContextOverflow ->
        "This conversation is longer than the model's context. Start a new chat, or raise the context length in Settings."
    is HearthException.InsufficientMemory ->
        "Not enough memory for this model. Close other apps, lower the context length, or pick a smaller model."
    is HearthException.GpuFault ->
        "The GPU failed. Choose CPU in Settings (or Auto) and send again."
    is HearthException.InvalidModel, is HearthException.UnsupportedModel ->
        "This file is not a model Hearth can run (${e.message}). Pick another model."
    is HearthException.Io -> "A file could not be read or written (${e.message}). Check free storage."
    is HearthException.Download -> "The download failed (${e.message}). Check the connection and resume."
    is HearthException.InvalidArgument -> "A setting is out of range (${e.message}). Check Settings."
    is HearthException.Cancelled -> "Stopped."
    is HearthException.Internal -> "Something went wrong inside Hearth (${e.message}). Please report it."
}
