package dev.hearth

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.launch
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** Real generations through the Kotlin API on a fixture model (CPU backend). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatSessionTest {
    private lateinit var model: HearthModel

    @BeforeAll
    fun load() = runBlocking {
        val phases = mutableListOf<LoadProgress>()
        model = HearthModel.load(Fixtures.path(Fixtures.DENSE), Fixtures.cpu) { p -> phases.add(p) }
        assertEquals("reading", phases.first().phase)
        assertEquals(1.0f, phases.last().fraction)
        assertTrue(phases.zipWithNext().all { (a, b) -> a.fraction <= b.fraction }, "$phases")
    }

    @AfterAll
    fun close() = model.close()

    @Test
    fun `info names the architecture, quant and backend`() {
        val info = model.info
        assertEquals("lfm2", info.architecture)
        assertEquals("Q4_0", info.quant)
        assertTrue(info.parameters > 0uL)
        assertTrue(info.backend.orEmpty().startsWith("cpu"), info.backend)
    }

    @Test
    fun `events arrive in order and the text equals the Rust API's`() = runBlocking {
        val opts = Fixtures.seeded(7L)
        model.newSession(SessionOptions()).use { session ->
            val events = session.streamResponse("What is C. elegans?", opts).toList()
            val done = events.last()
            assertIs<ChatEvent.Done>(done)
            assertEquals(1, events.count { it is ChatEvent.Done })
            assertTrue(done.stats.generatedTokens > 0u)
            val expected = referenceReply(model, SessionOptions(), "What is C. elegans?", opts)
            assertEquals(expected, Fixtures.text(events))
            assertEquals(listOf(Role.USER, Role.ASSISTANT), session.messages.map { it.role })
        }
        // Another seed gives another answer: the comparison above is not trivially true.
        val other = referenceReply(model, SessionOptions(), "What is C. elegans?", Fixtures.seeded(8L))
        assertNotEquals(referenceReply(model, SessionOptions(), "What is C. elegans?", opts), other)
    }

    @Test
    fun `the second turn reuses the cache`() = runBlocking {
        model.newSession(SessionOptions(instructions = "Be brief.")).use { session ->
            val first = session.respond("Hello", Fixtures.seeded(1L))
            assertEquals(0u, first.stats.cachedTokens)
            val second = session.respond("And its size?", Fixtures.seeded(1L))
            assertTrue(second.stats.cachedTokens > 0u, "${second.stats}")
            assertTrue(second.stats.cachedTokens < second.stats.promptTokens)
            assertEquals(4, session.messages.size)
            assertTrue(session.countTokens("more") > second.stats.promptTokens)
        }
    }

    @Test
    fun `a tool call in the history and its result fed back`() = runBlocking {
        val tool = ToolSpec(
            "get_weather", "Current weather for a city",
            """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""",
        )
        val plain = model.newSession(SessionOptions())
        val session = model.newSession(SessionOptions(tools = listOf(tool)))
        assertTrue(session.countTokens("Weather in Paris?") > plain.countTokens("Weather in Paris?") + 10u)
        plain.close()
        val call = ToolCall("call_0", "get_weather", """{"city":"Paris"}""")
        session.appendMessages(
            listOf(
                Message.user("Weather in Paris?"),
                Message(Role.ASSISTANT, "", toolCalls = listOf(call)),
            ),
        )
        assertEquals(call, session.messages[1].toolCalls.single())
        val reply = session.respond(Message.toolResult("get_weather", """{"temp_c":21}""", callId = "call_0"), Fixtures.seeded(3L))
        assertTrue(reply.stats.generatedTokens > 0u)
        assertEquals(listOf(Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT), session.messages.map { it.role })
        assertEquals("call_0", session.messages[2].toolCallId)
        // A malformed call is an argument error, not a crash.
        assertFailsWith<HearthException.InvalidArgument> {
            session.appendMessages(listOf(Message(Role.ASSISTANT, "", toolCalls = listOf(ToolCall("x", "f", "{not json")))))
        }
        session.close()
    }

    @Test
    fun `JSON-schema output parses`() = runBlocking {
        val schema = """{"type":"object","properties":{"name":{"type":"string","maxLength":12},""" +
            """"age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"]}"""
        model.newSession(SessionOptions()).use { session ->
            val reply = session.respond("Describe a person as JSON", GenerateOptions(temperature = 0.9f, maxTokens = 200, seed = 2L, jsonSchema = schema))
            assertEquals(StopReason.END_OF_TURN, reply.stats.stopReason, reply.text)
            assertTrue(Regex("""^\{"name":\s*".*",\s*"age":\s*\d+\s*}$""", RegexOption.DOT_MATCHES_ALL).matches(reply.text.trim()), reply.text)
            // The core's JSON parser accepts it too (arguments are parsed when a message is added).
            session.appendMessages(listOf(Message(Role.ASSISTANT, "", toolCalls = listOf(ToolCall("j", "json", reply.text)))))
        }
    }

    @Test
    fun `take(n) cancels and rolls the turn back`() = runBlocking {
        model.newSession(SessionOptions()).use { session ->
            val first = session.streamResponse("Tell me a long story", Fixtures.seeded(5L, maxTokens = 64)).take(2).toList()
            assertEquals(2, first.size)
            assertTrue(first.none { it is ChatEvent.Done })
            assertEquals(emptyList(), session.messages)
        }
    }

    /**
     * An unbuffered collector that stops after one event leaves the engine thread parked in a
     * send; closing the flow must wake it, or the session stays locked (kotlinx.coroutines#3952
     * hung this 2 runs in 2 before the SDK's own blocking send).
     */
    @Test
    fun `a cancelled unbuffered collector frees the session`() = runBlocking {
        model.newSession(SessionOptions()).use { session ->
            repeat(20) { i ->
                // As an app's view model does it: the collector's job is cancelled from an event.
                val job = launch(Dispatchers.Default) {
                    session.streamResponse("Tell me a long story", Fixtures.seeded(i.toLong(), maxTokens = 64))
                        .buffer(0).collect { currentCoroutineContext().cancel() }
                }
                job.join()
                assertEquals(emptyList(), session.messages, "round $i")
            }
        }
    }

    @Test
    fun `after a cancelled turn the next one equals a never-cancelled session`() = runBlocking {
        val opts = Fixtures.seeded(11L, maxTokens = 32)
        val cancelled = model.newSession(SessionOptions())
        val fresh = model.newSession(SessionOptions())
        val job = launchCollectingUntilFirstEvent(cancelled, opts)
        assertTrue(job, "the collector saw an event before being cancelled")
        val again = cancelled.respond("Tell me a story", opts)
        val reference = fresh.respond("Tell me a story", opts)
        assertEquals(reference.text, again.text)
        assertEquals(reference.thinking, again.thinking)
        assertEquals(reference.stats.generatedTokens, again.stats.generatedTokens)
        assertEquals(2, cancelled.messages.size)
        cancelled.close()
        fresh.close()
    }

    /** Collects in a child coroutine and cancels that coroutine after its first event. */
    private suspend fun launchCollectingUntilFirstEvent(session: ChatSession, opts: GenerateOptions): Boolean =
        kotlinx.coroutines.coroutineScope {
            val seen = kotlinx.coroutines.CompletableDeferred<Unit>()
            val job = launch(Dispatchers.Default) {
                session.streamResponse("Tell me a story", opts).collect { seen.complete(Unit) }
            }
            seen.await()
            job.cancel()
            job.join()
            job.isCancelled
        }

    @Test
    fun `four sessions collected concurrently`() = runBlocking {
        val opts = Fixtures.seeded(4L)
        val expected = referenceReply(model, SessionOptions(), "Hi there", opts)
        val sessions = List(4) { model.newSession(SessionOptions()) }
        val replies = sessions.map { s ->
            async(Dispatchers.Default) { Fixtures.text(s.streamResponse("Hi there", opts).toList()) }
        }.awaitAll()
        assertEquals(List(4) { expected }, replies)
        sessions.forEach { it.close() }
    }

    @Test
    fun `releaseMemory frees the caches and the conversation continues exactly`() = runBlocking {
        model.newSession(SessionOptions()).use { released ->
            model.newSession(SessionOptions()).use { kept ->
                released.respond("Hello", Fixtures.seeded(1L))
                kept.respond("Hello", Fixtures.seeded(1L))
                released.releaseMemory()
                assertEquals(kept.messages, released.messages)
                val a = released.respond("More", Fixtures.seeded(2L))
                val b = kept.respond("More", Fixtures.seeded(2L))
                assertEquals(b.text, a.text)
                assertEquals(0u, a.stats.cachedTokens, "the released cache was rebuilt by a prefill")
                assertTrue(b.stats.cachedTokens > 0u, "${b.stats}")
            }
        }
    }

    @Test
    fun `regenerate replaces the answer, reset forgets, save and restore continue`() = runBlocking {
        val dir = kotlin.io.path.createTempDirectory("hearth-save").toFile()
        model.newSession(SessionOptions()).use { session ->
            session.respond("Hello", Fixtures.seeded(1L))
            val again = session.regenerate(Fixtures.seeded(2L))
            assertEquals(2, session.messages.size)
            assertEquals(again.text, session.messages[1].content)
            val path = java.io.File(dir, "s.json").path
            session.save(path, includeCache = true)
            ChatSession.restore(model, path).use { restored ->
                assertEquals(session.messages, restored.messages)
                val a = session.respond("More", Fixtures.seeded(3L))
                val b = restored.respond("More", Fixtures.seeded(3L))
                assertEquals(a.text, b.text)
            }
            session.reset()
            assertEquals(emptyList(), session.messages)
        }
        dir.deleteRecursively()
        Unit
    }
}
