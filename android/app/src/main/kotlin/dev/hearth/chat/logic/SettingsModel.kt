package dev.hearth.chat.logic

import dev.hearth.Backend
import dev.hearth.GenerateOptions
import dev.hearth.ModelInfo
import dev.hearth.ModelOptions
import dev.hearth.SessionOptions
import dev.hearth.ToolSpec
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import java.io.File

/** What the user chose in Settings; also stored with each conversation. */
data class ChatSettings(
    /** The system prompt. */
    val instructions: String = DEFAULT_INSTRUCTIONS,
    val temperature: Float = 0.3f,
    val topP: Float = 1.0f,
    /** Most thinking tokens per answer; null = the model's default (unlimited). */
    val thinkingBudget: Int? = null,
    val contextLength: Int = 4096,
    val maxTokens: Int = 1024,
    val backend: Backend = Backend.AUTO,
    val toolsEnabled: Boolean = true,
) {
    /** Options of one turn. `thinkingBudget` is the SDK field agreed in this release. */
    fun generateOptions(seed: Long = 0L): GenerateOptions = GenerateOptions(
        temperature = temperature,
        maxTokens = maxTokens,
        seed = seed,
        topP = topP,
        thinkingBudget = thinkingBudget,
    )

    fun sessionOptions(tools: List<ToolSpec>): SessionOptions = SessionOptions(
        instructions = instructions.ifBlank { null },
        tools = if (toolsEnabled) tools else emptyList(),
        contextLength = contextLength,
    )

    /** [cacheDir]: where the SDK remembers a GPU that failed (the app's cache folder). */
    fun modelOptions(cacheDir: String? = null): ModelOptions =
        ModelOptions(backend = backend, contextLength = contextLength, cacheDir = cacheDir)

    fun toJson(): Map<String, Any?> = mapOf(
        "instructions" to instructions,
        "temperature" to temperature,
        "topP" to topP,
        "thinkingBudget" to thinkingBudget,
        "contextLength" to contextLength,
        "maxTokens" to maxTokens,
        "backend" to backend.name,
        "toolsEnabled" to toolsEnabled,
    )

    companion object {
        const val DEFAULT_INSTRUCTIONS = "You are a helpful assistant running privately on this device."
        val CONTEXT_LENGTHS = listOf(2048, 4096, 8192, 16384, 32768)

        /** Reads what [toJson] wrote; missing or invalid fields keep their defaults. */
        fun fromJson(o: Map<String, Any?>): ChatSettings {
            val d = ChatSettings()
            return ChatSettings(
                instructions = o.str("instructions") ?: d.instructions,
                temperature = o.num("temperature")?.toFloat() ?: d.temperature,
                topP = o.num("topP")?.toFloat() ?: d.topP,
                thinkingBudget = o.num("thinkingBudget")?.toInt(),
                contextLength = o.num("contextLength")?.toInt() ?: d.contextLength,
                maxTokens = o.num("maxTokens")?.toInt() ?: d.maxTokens,
                backend = Backend.entries.firstOrNull { it.name == o.str("backend") } ?: d.backend,
                toolsEnabled = o.bool("toolsEnabled") ?: d.toolsEnabled,
            ).validated()
        }
    }

    /** Clamped into the ranges the SDK accepts. */
    fun validated(): ChatSettings = copy(
        temperature = temperature.coerceIn(0f, 2f),
        topP = topP.coerceIn(0.05f, 1f),
        thinkingBudget = thinkingBudget?.coerceIn(0, 32768),
        contextLength = contextLength.coerceIn(512, 131072),
        maxTokens = maxTokens.coerceIn(16, 8192),
    )
}

/** Settings as observable state, persisted to [file] (JSON) on every change. */
class SettingsModel(private val file: File) {
    private val _settings = MutableStateFlow(load())
    val settings: StateFlow<ChatSettings> = _settings.asStateFlow()

    private fun load(): ChatSettings = try {
        if (file.isFile) ChatSettings.fromJson(Json.parseObject(file.readText())) else ChatSettings()
    } catch (_: Json.ParseException) {
        ChatSettings()
    }

    fun update(change: (ChatSettings) -> ChatSettings) {
        _settings.update { change(it).validated() }
        file.parentFile?.mkdirs()
        val tmp = File(file.path + ".tmp")
        tmp.writeText(Json.write(_settings.value.toJson()))
        tmp.renameTo(file)
    }

    fun setInstructions(v: String) = update { it.copy(instructions = v) }
    fun setTemperature(v: Float) = update { it.copy(temperature = v) }
    fun setTopP(v: Float) = update { it.copy(topP = v) }
    fun setThinkingBudget(v: Int?) = update { it.copy(thinkingBudget = v) }
    fun setContextLength(v: Int) = update { it.copy(contextLength = v) }
    fun setBackend(v: Backend) = update { it.copy(backend = v) }
    fun setToolsEnabled(v: Boolean) = update { it.copy(toolsEnabled = v) }

    /** Backend and context apply when the model is loaded; the rest on the next turn. */
    fun needsReload(loadedWith: ChatSettings): Boolean {
        val s = settings.value
        return s.backend != loadedWith.backend || s.contextLength != loadedWith.contextLength
    }
}

/** "What runs where and why", for Settings: the choice and the SDK's report of the loaded model. */
fun backendReport(choice: Backend, info: ModelInfo?): String {
    val chosen = when (choice) {
        Backend.AUTO -> "Auto (the GPU if it passes its self-test, else the CPU)"
        Backend.GPU -> "GPU"
        Backend.CPU -> "CPU"
    }
    val inUse = info?.backend ?: return "Chosen: $chosen. No model loaded."
    return "Chosen: $chosen. In use: $inUse."
}
