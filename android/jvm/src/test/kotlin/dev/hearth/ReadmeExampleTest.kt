package dev.hearth

import com.sun.net.httpserver.HttpServer
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.net.InetSocketAddress
import java.security.MessageDigest
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * The README's "Use from Kotlin" example, run as written: the lines between the `readme`
 * markers are the README's code block (scripts/check-readme.sh compares them).
 */
class ReadmeExampleTest {
    @Test
    fun `the README example runs`(@TempDir dir: File) = runBlocking {
        val path = Fixtures.path(Fixtures.DENSE)
        val file = File(dir, "chat.json")
        val bytes = File(Fixtures.path(Fixtures.MOE)).readBytes()
        val sha = MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }
        val ref = ModelRef("test-owner/test-model", "tiny-Q4_0.gguf", sha)
        val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/") { ex ->
            ex.responseHeaders.add("X-Linked-Size", bytes.size.toString())
            if (ex.requestMethod == "HEAD") ex.sendResponseHeaders(200, -1) else {
                ex.sendResponseHeaders(200, bytes.size.toLong())
                ex.responseBody.use { it.write(bytes) }
            }
            ex.close()
        }
        server.start()
        val hub = "http://127.0.0.1:${server.address.port}"
        val modelsDir = File(dir, "models")

        // readme:begin
        val model = HearthModel.load(path, ModelOptions(backend = Backend.CPU, contextLength = 2048)) { p -> println("${p.phase} ${p.fraction}") }
        println(model.info) // architecture, parameters, quant, backend in use and why
        val weather = ToolSpec("get_weather", "Current weather for a city", """{"type":"object","properties":{"city":{"type":"string"}}}""")
        val session = model.newSession(SessionOptions(instructions = "Be brief.", tools = listOf(weather)))
        session.streamResponse("What is C. elegans?", GenerateOptions(temperature = 0.9f, maxTokens = 24, seed = 7L))
            .collect { e ->
                when (e) {
                    is ChatEvent.Thinking -> print(e.text)
                    is ChatEvent.Text -> print(e.text)
                    is ChatEvent.ToolCall -> println("${e.call.name}(${e.call.argumentsJson})")
                    is ChatEvent.ToolCallError -> println(e.reason)
                    is ChatEvent.Done -> println("\n${e.stats.generatedTokens} tokens, ${e.stats.cachedTokens} cached")
                }
            }
        val reply = session.respond("And its size?", GenerateOptions(maxTokens = 24)) // text, thinking, toolCalls, stats
        val edited = session.edit("And its lifespan?", GenerateOptions(maxTokens = 24, thinkingBudget = 64)) // replaces the last question
        session.streamResponse(Message.toolResult("get_weather", """{"temp_c":21}""", callId = "call_0")).take(2).collect { } // take(n) cancels: rolled back
        session.save(file.path, includeCache = true)
        ChatSession.restore(model, file.path).use { it.respond("More", GenerateOptions(maxTokens = 8)) }
        val history = session.messages
        session.close()
        model.close()
        val store = ModelStore(modelsDir.path, hub) // hub = null: Hugging Face
        println(store.catalogue().filter { it.fits == true }.map { "${it.name} ${it.quant}" })
        store.download(ref).collect { p -> println(p.path ?: "${p.downloadedBytes}/${p.totalBytes}") }
        // readme:end

        server.stop(0)
        assertTrue(reply.stats.cachedTokens > 0u, "${reply.stats}")
        assertTrue(edited.stats.cachedTokens >= reply.stats.cachedTokens, "${edited.stats}")
        assertEquals(listOf("What is C. elegans?", "And its lifespan?"), history.filter { it.role == Role.USER }.map { it.content })
        assertEquals(4, history.size)
        assertEquals(listOf("tiny-Q4_0.gguf"), store.installed().map { it.name })
    }
}
