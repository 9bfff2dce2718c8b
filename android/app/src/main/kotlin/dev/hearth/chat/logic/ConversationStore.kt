package dev.hearth.chat.logic

import dev.hearth.ChatSession
import dev.hearth.HearthException
import dev.hearth.HearthModel
import dev.hearth.Message
import dev.hearth.Role
import dev.hearth.SessionOptions
import dev.hearth.StopReason
import dev.hearth.ToolCall
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import java.io.File
import java.util.UUID

/** A conversation as stored: its messages (as shown) and the settings it runs with. */
data class Conversation(
    val id: String,
    val title: String,
    val createdAtMs: Long,
    val updatedAtMs: Long,
    val settings: ChatSettings,
    val messages: List<ChatMessage> = emptyList(),
    /** The model file it was last used with (its name in the models directory). */
    val modelName: String? = null,
)

data class ConversationSummary(val id: String, val title: String, val updatedAtMs: Long, val messageCount: Int)

/**
 * Conversations on the device, one JSON file each in [directory] (`<id>.json`), plus the SDK's
 * saved session (`<id>.session`: the history and its token cache, written by [saveCache] when
 * the app goes to the background, so that reopening a long chat does not prefill it again).
 */
class ConversationStore(private val directory: File, private val clock: () -> Long = System::currentTimeMillis) {
    private val _list = MutableStateFlow<List<ConversationSummary>>(emptyList())
    val conversations: StateFlow<List<ConversationSummary>> = _list.asStateFlow()

    init {
        directory.mkdirs()
        refresh()
    }

    fun refresh() {
        val files = directory.listFiles { f -> f.name.endsWith(".json") }.orEmpty()
        _list.value = files.mapNotNull { f -> read(f) }
            .sortedByDescending { it.updatedAtMs }
            .map { ConversationSummary(it.id, it.title, it.updatedAtMs, it.messages.size) }
    }

    fun create(settings: ChatSettings, title: String = "New chat"): Conversation {
        val now = clock()
        val c = Conversation(UUID.randomUUID().toString(), title, now, now, settings)
        write(c)
        return c
    }

    fun load(id: String): Conversation? = read(jsonFile(id))

    /** Stores [conversation] with new [messages]; a "New chat" is titled by its first message. */
    fun update(conversation: Conversation, messages: List<ChatMessage>, modelName: String? = conversation.modelName): Conversation {
        val first = messages.firstOrNull { it.author == Author.USER }?.text
        val title = if (conversation.title == "New chat" && first != null) titleFrom(first) else conversation.title
        val c = conversation.copy(messages = messages, title = title, updatedAtMs = clock(), modelName = modelName)
        write(c)
        return c
    }

    fun rename(id: String, title: String): Conversation? {
        val c = load(id) ?: return null
        return c.copy(title = title.trim().ifEmpty { c.title }, updatedAtMs = clock()).also { write(it) }
    }

    fun delete(id: String) {
        jsonFile(id).delete()
        cacheFile(id).delete()
        refresh()
    }

    fun cacheFile(id: String) = File(directory, "$id.session")

    /** Saves the SDK session with its token cache (call it when the app goes to the background). */
    fun saveCache(id: String, session: ChatSession) {
        session.save(cacheFile(id).path, includeCache = true)
    }

    /**
     * The SDK session of [conversation] on [model]: restored from its saved cache when there is
     * one for this model (the next turn then reuses it), otherwise a new session with the stored
     * history pushed into it (the next turn prefills it).
     */
    fun openSession(model: HearthModel, conversation: Conversation, options: SessionOptions): ChatSession {
        val cache = cacheFile(conversation.id)
        if (cache.isFile) {
            try {
                val restored = ChatSession.restore(model, cache.path)
                if (restored.messages().size == history(conversation.messages).size) return restored
                restored.close()
            } catch (_: HearthException) {
                // A cache from another model or an older SDK: rebuild from the messages below.
            }
            cache.delete()
        }
        val session = model.newSession(options)
        val history = history(conversation.messages)
        if (history.isNotEmpty()) session.appendMessages(history)
        return session
    }

    private fun jsonFile(id: String) = File(directory, "$id.json")

    private fun write(c: Conversation) {
        val tmp = File(directory, "${c.id}.json.tmp")
        tmp.writeText(Json.write(encode(c)))
        if (!tmp.renameTo(jsonFile(c.id))) throw java.io.IOException("cannot write ${jsonFile(c.id)}")
        refresh()
    }

    private fun read(f: File): Conversation? = try {
        decode(Json.parseObject(f.readText()))
    } catch (_: Json.ParseException) {
        null
    } catch (_: java.io.IOException) {
        null
    }

    companion object {
        fun titleFrom(text: String): String {
            val line = text.lineSequence().first().trim()
            return if (line.length <= 40) line else line.take(39).trimEnd() + "…"
        }

        /** The SDK history of shown messages: tool results come from the cards. */
        fun history(messages: List<ChatMessage>): List<Message> = messages.flatMap { m ->
            when (m.author) {
                Author.USER -> listOf(Message(Role.USER, m.text))
                Author.ASSISTANT -> {
                    val calls = m.toolCards.map { ToolCall(it.callId, it.name, it.argumentsJson) }
                    val answer = Message(Role.ASSISTANT, m.text, thinking = m.thinking.ifEmpty { null }, toolCalls = calls)
                    val results = m.toolCards.filter { it.resultJson != null }.map {
                        Message(Role.TOOL, it.resultJson!!, toolCallId = it.callId, name = it.name)
                    }
                    listOf(answer) + results
                }
            }
        }

        fun encode(c: Conversation): Map<String, Any?> = mapOf(
            "version" to 1,
            "id" to c.id,
            "title" to c.title,
            "createdAtMs" to c.createdAtMs,
            "updatedAtMs" to c.updatedAtMs,
            "modelName" to c.modelName,
            "settings" to c.settings.toJson(),
            "messages" to c.messages.map { m ->
                mapOf(
                    "id" to m.id,
                    "author" to m.author.name,
                    "text" to m.text,
                    "thinking" to m.thinking,
                    "thinkingTokens" to m.thinkingTokens,
                    "toolCards" to m.toolCards.map {
                        mapOf("callId" to it.callId, "name" to it.name, "arguments" to it.argumentsJson, "result" to it.resultJson, "error" to it.error)
                    },
                    "stats" to m.stats?.let { s ->
                        mapOf(
                            "promptTokens" to s.promptTokens, "cachedTokens" to s.cachedTokens, "generatedTokens" to s.generatedTokens,
                            "ttftMs" to s.timeToFirstTokenMs, "prefillTps" to s.prefillTokensPerSecond, "decodeTps" to s.decodeTokensPerSecond,
                            "stopReason" to s.stopReason.name, "backend" to s.backend,
                        )
                    },
                )
            },
        )

        @Suppress("UNCHECKED_CAST")
        fun decode(o: Map<String, Any?>): Conversation? {
            val id = o.str("id") ?: return null
            val messages = o.objects("messages").mapNotNull { m ->
                val author = Author.entries.firstOrNull { it.name == m.str("author") } ?: return@mapNotNull null
                val stats = (m["stats"] as? Map<String, Any?>)?.let { s ->
                    MessageStats(
                        s.num("promptTokens")?.toInt() ?: 0, s.num("cachedTokens")?.toInt() ?: 0, s.num("generatedTokens")?.toInt() ?: 0,
                        s.num("ttftMs") ?: 0.0, s.num("prefillTps") ?: 0.0, s.num("decodeTps") ?: 0.0,
                        StopReason.entries.firstOrNull { it.name == s.str("stopReason") } ?: StopReason.END_OF_TURN, s.str("backend"),
                    )
                }
                ChatMessage(
                    id = m.num("id")?.toLong() ?: 0L,
                    author = author,
                    text = m.str("text").orEmpty(),
                    thinking = m.str("thinking").orEmpty(),
                    thinkingTokens = m.num("thinkingTokens")?.toInt() ?: 0,
                    toolCards = m.objects("toolCards").map {
                        ToolCard(it.str("callId").orEmpty(), it.str("name").orEmpty(), it.str("arguments") ?: "{}", it.str("result"), it.str("error"))
                    },
                    stats = stats,
                )
            }
            return Conversation(
                id = id,
                title = o.str("title") ?: "Chat",
                createdAtMs = o.num("createdAtMs")?.toLong() ?: 0L,
                updatedAtMs = o.num("updatedAtMs")?.toLong() ?: 0L,
                settings = (o["settings"] as? Map<String, Any?>)?.let { ChatSettings.fromJson(it) } ?: ChatSettings(),
                messages = messages,
                modelName = o.str("modelName"),
            )
        }
    }
}
