package dev.hearth

import java.io.File
import kotlin.test.assertTrue

/** Fixture models (random weights, real tokenizer and template) from core/tests/fixtures. */
object Fixtures {
    private val dir = File(System.getProperty("hearth.fixtures.dir"), "gguf")

    const val DENSE = "lfm2-dense-h64-q4_0.gguf"
    const val MOE = "lfm2moe-h64-e8k2-q4_0.gguf"

    fun path(name: String): String {
        val f = File(dir, name)
        assertTrue(f.isFile, "fixture missing: $f")
        return f.path
    }

    /** The CPU backend: results must not depend on whether a GPU is there. */
    val cpu = ModelOptions(backend = Backend.CPU, contextLength = 2048)

    /** Seeded sampling at a temperature where different seeds give different text. */
    fun seeded(seed: Long, maxTokens: Int = 24) =
        GenerateOptions(temperature = 0.9f, maxTokens = maxTokens, seed = seed)

    /** Thinking and answer text of a stream, in order. */
    fun text(events: List<ChatEvent>): String = events.joinToString("") {
        when (it) {
            is ChatEvent.Text -> it.text
            is ChatEvent.Thinking -> it.text
            else -> ""
        }
    }

    /** VmRSS of this process in KiB (Linux). */
    fun rssKib(): Long = File("/proc/self/status").readLines()
        .first { it.startsWith("VmRSS:") }
        .split(Regex("\\s+"))[1].toLong()
}
